// Package docs holds pgtrail's documentation; its test keeps the cookbook
// (queries.md) honest.
package docs

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/internal/testdb"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// query is one ```sql block of queries.md, named by the
// <!-- query: name --> marker above it.
type query struct {
	name, sql string
	line      int
}

var marker = regexp.MustCompile(`^<!-- query: ([a-z0-9-]+) -->$`)

// parseCookbook returns the named SQL blocks of a Markdown file. Every sql
// block must have a marker of its own.
func parseCookbook(t *testing.T, path string) []query {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out     []query
		name    string
		inBlock bool
		sql     strings.Builder
		start   int
	)
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case inBlock && strings.TrimSpace(line) == "```":
			inBlock = false
			out = append(out, query{name: name, sql: sql.String(), line: start})
			name = ""
		case inBlock:
			sql.WriteString(line + "\n")
		case strings.HasPrefix(line, "```sql"):
			if name == "" {
				t.Fatalf("%s:%d: sql block without a <!-- query: name --> marker above it", path, n)
			}
			inBlock, start = true, n
			sql.Reset()
		case marker.MatchString(line):
			name = marker.FindStringSubmatch(line)[1]
			if seen[name] {
				t.Fatalf("%s:%d: query name %q used twice", path, n, name)
			}
			seen[name] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// result is a query's answer as psql shows it: text, NULL as "".
type result struct {
	cols []string
	rows [][]string
}

func (r *result) col(t *testing.T, name string) int {
	t.Helper()
	i := slices.Index(r.cols, name)
	if i < 0 {
		t.Fatalf("no column %q in %v", name, r.cols)
	}
	return i
}

// run executes sql as psql would: the simple protocol, one statement.
func run(ctx context.Context, c *pgx.Conn, sql string) (*result, error) {
	rows, err := c.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	res := &result{}
	for _, fd := range rows.FieldDescriptions() {
		res.cols = append(res.cols, fd.Name)
	}
	for rows.Next() {
		var row []string
		for _, v := range rows.RawValues() {
			row = append(row, string(v))
		}
		res.rows = append(res.rows, row)
	}
	return res, rows.Err()
}

// TestCookbook runs every query of queries.md, as the reader role, against
// a database loaded from the CloudTrail corpus through the real decode and
// write path, and checks the answers of the queries the corpus exercises
// against answers computed from the corpus files themselves.
func TestCookbook(t *testing.T) {
	ctx := context.Background()
	queries := parseCookbook(t, "queries.md")
	if len(queries) < 20 {
		t.Fatalf("queries.md has %d queries, want at least 20", len(queries))
	}
	names := map[string]bool{}
	for _, q := range queries {
		names[q.name] = true
	}
	for name := range checks {
		if !names[name] {
			t.Errorf("a check for query %q, which queries.md lacks", name)
		}
	}

	dbURL := pgtest.New(t)
	pg, err := sink.Open(ctx, sink.Config{URL: dbURL}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	var c *corpus
	if dir := corpusDir(t); dir == "" {
		t.Log("CloudTrail corpus not found (set PGTRAIL_CORPUS): the queries run on an empty database, unchecked")
	} else {
		files, err := worker.LogFiles([]string{filepath.Join(dir, "s3")})
		if err != nil {
			t.Fatal(err)
		}
		testdb.Ingest(t, pg, files)
		c = readCorpus(t, files)
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET TimeZone = 'UTC'; SET ROLE "+sink.DefaultReaderRole); err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			res, err := run(ctx, conn, q.sql)
			if err != nil {
				t.Fatalf("queries.md:%d: %v\n%s", q.line, err, q.sql)
			}
			if check := checks[q.name]; check != nil && c != nil {
				check(t, res, c)
			}
		})
	}
}

// ts is a timestamptz as PostgreSQL writes it in UTC.
func ts(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}

func itoa(n int) string { return strconv.Itoa(n) }

// expectRows compares got with want as multisets: the queries' order is
// their own business. want must not be empty, lest the check prove nothing.
func expectRows(t *testing.T, got *result, want [][]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the corpus gives no expected rows: the check proves nothing")
	}
	expectRowsOrNone(t, got, want)
}

// expectRowsOrNone is expectRows for the questions the corpus may leave
// unanswered: its hand-written examples of root use, KMS and AWS Config
// changes share eventID "1" and time 2019-01-01T00:00:00Z with other
// records, so that only the first of them, another event, is stored.
func expectRowsOrNone(t *testing.T, got *result, want [][]string) {
	t.Helper()
	key := func(r []string) string { return strings.Join(r, " | ") }
	var g, w []string
	for _, r := range got.rows {
		g = append(g, key(r))
	}
	for _, r := range want {
		w = append(w, key(r))
	}
	slices.Sort(g)
	slices.Sort(w)
	if slices.Equal(g, w) {
		return
	}
	t.Errorf("got %d rows, want %d", len(g), len(w))
	for _, r := range g {
		if !slices.Contains(w, r) {
			t.Errorf("unexpected: %s", r)
		}
	}
	for _, r := range w {
		if !slices.Contains(g, r) {
			t.Errorf("missing:    %s", r)
		}
	}
}

// select returns one row per record that keep accepts.
func (c *corpus) selectRows(keep func(*record) bool, row func(*record) []string) [][]string {
	var out [][]string
	for _, r := range c.records {
		if keep(r) {
			out = append(out, row(r))
		}
	}
	return out
}

// agg accumulates one group of records.
type agg struct {
	n, errors int
	first     time.Time
	last      time.Time
	names     map[string]bool
	ips       map[string]bool
}

func (a *agg) add(r *record) {
	if a.n == 0 || r.Time.Before(a.first) {
		a.first = r.Time
	}
	if r.Time.After(a.last) {
		a.last = r.Time
	}
	a.n++
	if r.ErrorCode != "" {
		a.errors++
	}
	a.names[r.Name] = true
	a.ips[r.IP] = true
}

// group returns the records that keep accepts, grouped by key, and each
// group's row made by out from its key and aggregate.
func (c *corpus) group(keep func(*record) bool, key func(*record) []string, out func(k []string, a *agg) []string) [][]string {
	groups := map[string]*agg{}
	keys := map[string][]string{}
	var order []string
	for _, r := range c.records {
		if !keep(r) {
			continue
		}
		k := key(r)
		s := strings.Join(k, "\x00")
		if groups[s] == nil {
			groups[s] = &agg{names: map[string]bool{}, ips: map[string]bool{}}
			keys[s] = k
			order = append(order, s)
		}
		groups[s].add(r)
	}
	var rows [][]string
	for _, s := range order {
		rows = append(rows, append(slices.Clone(keys[s]), out(keys[s], groups[s])...))
	}
	return rows
}

// pgArray is a text array of plain values as PostgreSQL writes it, sorted
// as array_agg(DISTINCT …) leaves it.
func pgArray(set map[string]bool) string {
	var vals []string
	for v := range set {
		if v == "" {
			v = "NULL"
		}
		vals = append(vals, v)
	}
	slices.Sort(vals)
	return "{" + strings.Join(vals, ",") + "}"
}

func inRange(from, to string, also func(*record) bool) func(*record) bool {
	return func(r *record) bool { return r.between(from, to) && also(r) }
}

func is(finding string) func(*record) bool { return func(r *record) bool { return r.is(finding) } }

// mustContain fails unless some row has value in column col, for every
// value: the events the corpus is known for must be found.
func mustContain(t *testing.T, res *result, col string, values ...string) {
	t.Helper()
	i := res.col(t, col)
	for _, v := range values {
		if !slices.ContainsFunc(res.rows, func(r []string) bool { return r[i] == v }) {
			t.Errorf("no row with %s = %q", col, v)
		}
	}
}

// stratus returns the field f of the records of the stratus-red-team set
// that keep accepts: the detonations the views exist to catch.
func (c *corpus) stratus(keep func(*record) bool, f func(*record) string) []string {
	var out []string
	for _, r := range c.records {
		if strings.Contains(filepath.ToSlash(r.File), "/stratus-red-team/") && keep(r) {
			out = append(out, f(r))
		}
	}
	return out
}

func coalesce(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

const (
	all0, all1 = "2010-01-01", "2030-01-01" // the whole corpus, in the queries
	h2a, h2b   = "2024-07-01", "2025-01-01" // the stratus-red-team detonations
	sumA, sumB = "2024-07-01", "2024-09-01"
	principal  = "arn:aws:iam::056392974792:user/christophe"
)

// checks holds, by query name, what the corpus says the answer must be.
var checks = map[string]func(t *testing.T, res *result, c *corpus){
	"cis-by-finding": func(t *testing.T, res *result, c *corpus) {
		n, ok := map[string]int{}, map[string]int{}
		for _, r := range c.records {
			if !r.between(all0, all1) {
				continue
			}
			for _, f := range r.findings() {
				n[f]++
				if r.ErrorCode == "" {
					ok[f]++
				}
			}
		}
		var want [][]string
		for f := range n {
			want = append(want, []string{f, itoa(n[f]), itoa(ok[f])})
		}
		expectRows(t, res, want)
		for _, r := range c.records {
			if strings.Contains(filepath.ToSlash(r.File), "/stratus-red-team/") {
				mustContain(t, res, "finding", r.findings()...)
			}
		}
	},
	"unauthorized-by-principal": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.group(inRange(h2a, h2b, is("unauthorized_calls")),
			func(r *record) []string { return []string{r.ARN, r.Source, r.Name, r.ErrorCode} },
			func(_ []string, a *agg) []string { return []string{itoa(a.n), ts(a.first), ts(a.last)} }))
		mustContain(t, res, "event_name", "GetPasswordData", "LeaveOrganization")
	},
	"console-without-mfa": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.selectRows(inRange(h2a, h2b, is("console_logins_without_mfa")), func(r *record) []string {
			return []string{ts(r.Time), r.Account, r.ARN, r.IP, r.UserAgent, field(r.Extra, "MFAUsed")}
		}))
		mustContain(t, res, "user_identity_arn", c.stratus(func(r *record) bool { return r.Name == "ConsoleLogin" },
			func(r *record) string { return r.ARN })...)
	},
	"root-usage": func(t *testing.T, res *result, c *corpus) {
		expectRowsOrNone(t, res, c.selectRows(inRange(all0, all1, is("root_account_usage")), func(r *record) []string {
			return []string{ts(r.Time), r.Account, r.Source, r.Name, r.IP, r.ErrorCode}
		}))
	},
	"iam-policy-changes": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.selectRows(inRange(all0, all1, is("iam_policy_changes")), func(r *record) []string {
			return []string{ts(r.Time), r.ARN, r.Name, r.ErrorCode,
				coalesce(field(r.Req, "policyArn"), field(r.Req, "policyName")),
				coalesce(field(r.Req, "userName"), field(r.Req, "roleName"), field(r.Req, "groupName"))}
		}))
		mustContain(t, res, "event_name", c.stratus(is("iam_policy_changes"), func(r *record) string { return r.Name })...)
	},
	"cloudtrail-changes": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.selectRows(inRange(h2a, h2b, is("cloudtrail_changes")), func(r *record) []string {
			return []string{ts(r.Time), r.Account, r.ARN, r.Name, r.ErrorCode, coalesce(field(r.Req, "name"), field(r.Req, "trailName"))}
		}))
		// The stratus-red-team detonations: cloudtrail-stop,
		// cloudtrail-delete and cloudtrail-event-selectors.
		mustContain(t, res, "event_name", "StopLogging", "DeleteTrail", "PutEventSelectors")
		mustContain(t, res, "user_identity_arn", c.stratus(is("cloudtrail_changes"), func(r *record) string { return r.ARN })...)
	},
	"console-login-failures": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.group(inRange(all0, all1, is("console_login_failures")),
			func(r *record) []string { return []string{r.ARN, r.IP} },
			func(_ []string, a *agg) []string { return []string{itoa(a.n), ts(a.last)} }))
	},
	"kms-keys": func(t *testing.T, res *result, c *corpus) {
		expectRowsOrNone(t, res, c.selectRows(inRange(all0, all1, is("kms_key_disabled_or_deleted")), func(r *record) []string {
			return []string{ts(r.Time), r.ARN, r.Name, r.ErrorCode, field(r.Req, "keyId"), field(r.Req, "pendingWindowInDays")}
		}))
	},
	"s3-policy-changes": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.selectRows(inRange(all0, all1, is("s3_bucket_policy_changes")), func(r *record) []string {
			return []string{ts(r.Time), r.ARN, r.Name, r.ErrorCode, field(r.Req, "bucketName")}
		}))
	},
	"config-changes": func(t *testing.T, res *result, c *corpus) {
		expectRowsOrNone(t, res, c.selectRows(inRange(all0, all1, is("config_changes")), func(r *record) []string {
			return []string{ts(r.Time), r.ARN, r.Name, r.ErrorCode}
		}))
	},
	"network-changes": func(t *testing.T, res *result, c *corpus) {
		var want [][]string
		for _, f := range []string{"security_group_changes", "nacl_changes", "network_gateway_changes", "route_table_changes", "vpc_changes"} {
			want = append(want, c.group(inRange(all0, all1, is(f)),
				func(r *record) []string { return []string{f, r.Name} },
				func(_ []string, a *agg) []string { return []string{itoa(a.n), itoa(a.errors)} })...)
		}
		expectRows(t, res, want)
		mustContain(t, res, "event_name", c.stratus(is("security_group_changes"), func(r *record) string { return r.Name })...)
	},
	"organizations-changes": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.selectRows(inRange(h2a, h2b, is("organizations_changes")), func(r *record) []string {
			return []string{ts(r.Time), r.Account, r.ARN, r.Name, r.ErrorCode}
		}))
		mustContain(t, res, "event_name", "LeaveOrganization")
	},
	"principal-per-day": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.group(inRange(sumA, sumB, func(r *record) bool { return r.ARN == principal }),
			func(r *record) []string { return []string{ts(r.Time.Truncate(24 * time.Hour)), r.Name} },
			func(_ []string, a *agg) []string { return []string{itoa(a.n), itoa(a.errors)} }))
	},
	"principal-latest": func(t *testing.T, res *result, c *corpus) {
		want := c.selectRows(inRange(sumA, sumB, func(r *record) bool { return r.ARN == principal }), func(r *record) []string {
			return []string{ts(r.Time), r.Source, r.Name, r.Region, r.IP, r.ErrorCode}
		})
		if len(want) > 100 {
			t.Fatalf("the principal has %d events: the check assumes the LIMIT takes them all", len(want))
		}
		expectRows(t, res, want)
		for i := 1; i < len(res.rows); i++ {
			if res.rows[i][0] > res.rows[i-1][0] {
				t.Errorf("row %d is newer than row %d", i, i-1)
			}
		}
	},
	"user-source-ips": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.group(inRange(sumA, sumB, func(r *record) bool { return r.ARN == "arn:aws:iam::017622104382:user/christophe" }),
			func(r *record) []string { return []string{r.IP} },
			func(_ []string, a *agg) []string { return []string{ts(a.first), ts(a.last), itoa(a.n)} }))
	},
	"access-key-actions": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.group(inRange(sumA, sumB, func(r *record) bool { return r.Key == "AKIAW9X2Q2U25SK79UCX" }),
			func(r *record) []string { return []string{r.Source, r.Name} },
			func(_ []string, a *agg) []string { return []string{itoa(a.n), ts(a.first), ts(a.last), pgArray(a.ips)} }))
	},
	"ip-activity": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.group(inRange(sumA, sumB, func(r *record) bool { return r.IP == "253.252.51.07" }),
			func(r *record) []string { return []string{r.ARN, r.Key} },
			func(_ []string, a *agg) []string {
				return []string{itoa(a.n), itoa(len(a.names)), ts(a.first), ts(a.last)}
			}))
	},
	"assumed-roles": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.group(inRange(h2a, h2b, func(r *record) bool { return r.Name == "AssumeRole" }),
			func(r *record) []string { return []string{r.ARN, field(r.Req, "roleArn"), r.ErrorCode} },
			func(_ []string, a *agg) []string { return []string{itoa(a.n), ts(a.last)} }))
	},
	"errors-by-principal": func(t *testing.T, res *result, c *corpus) {
		all := c.group(inRange(h2a, h2b, func(r *record) bool { return r.ErrorCode != "" }),
			func(r *record) []string { return []string{r.ARN, r.ErrorCode} },
			func(_ []string, a *agg) []string { return []string{itoa(a.n), itoa(len(a.names))} })
		if len(all) <= 20 {
			expectRows(t, res, all)
			return
		}
		// Past the LIMIT, ties may fall either way: every row must be a
		// group, and the counts must be the 20 highest.
		counts := func(rows [][]string) []int {
			var n []int
			for _, r := range rows {
				v, _ := strconv.Atoi(r[2])
				n = append(n, v)
			}
			slices.Sort(n)
			return n
		}
		top := counts(all)[len(all)-20:]
		if got := counts(res.rows); !slices.Equal(got, top) {
			t.Errorf("error counts %v, want %v", got, top)
		}
	},
	"resource-arn": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.selectRows(inRange(h2a, h2b, func(r *record) bool {
			return slices.ContainsFunc(r.Resources, func(v any) bool {
				m, _ := v.(map[string]any)
				return field(m, "ARN") == "arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role"
			})
		}), func(r *record) []string { return []string{ts(r.Time), r.ARN, r.Name, r.ErrorCode} }))
	},
	"trail-history": func(t *testing.T, res *result, c *corpus) {
		const trail = "stratus-red-team-ct-stop-trail-buykxbqejv"
		expectRows(t, res, c.selectRows(inRange(h2a, h2b, func(r *record) bool {
			return r.Source == "cloudtrail.amazonaws.com" && (field(r.Req, "name") == trail || field(r.Req, "trailName") == trail)
		}), func(r *record) []string { return []string{ts(r.Time), r.ARN, r.Name, r.ErrorCode} }))
		mustContain(t, res, "event_name", "StopLogging")
	},
	"busiest-apis": func(t *testing.T, res *result, c *corpus) {
		calls := map[string]int{}
		best := map[string]int{}
		for _, g := range c.group(inRange(h2a, h2b, func(*record) bool { return true }),
			func(r *record) []string { return []string{r.Account, r.Source, r.Name} },
			func(_ []string, a *agg) []string { return []string{itoa(a.n)} }) {
			n, _ := strconv.Atoi(g[3])
			calls[strings.Join(g[:3], "|")] = n
			best[g[0]] = max(best[g[0]], n)
		}
		seen := map[string]int{}
		for _, r := range res.rows {
			n, _ := strconv.Atoi(r[3])
			if calls[strings.Join(r[:3], "|")] != n {
				t.Errorf("row %v: the corpus has %d calls", r, calls[strings.Join(r[:3], "|")])
			}
			if seen[r[0]] == 0 && n != best[r[0]] {
				t.Errorf("account %s: first row has %d calls, the busiest API has %d", r[0], n, best[r[0]])
			}
			seen[r[0]]++
		}
		if len(seen) != len(best) {
			t.Errorf("%d accounts, want %d", len(seen), len(best))
		}
		for a, n := range seen {
			if n > 3 {
				t.Errorf("account %s has %d rows, want at most 3", a, n)
			}
		}
	},
	"secrets-read": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.group(inRange(h2a, h2b, func(r *record) bool {
			return slices.Contains([]string{"GetSecretValue", "BatchGetSecretValue", "GetParameter", "GetParameters"}, r.Name)
		}),
			func(r *record) []string { return []string{r.ARN, r.Name} },
			func(_ []string, a *agg) []string { return []string{itoa(a.n), ts(a.first), ts(a.last)} }))
	},
	"access-keys-created": func(t *testing.T, res *result, c *corpus) {
		expectRows(t, res, c.selectRows(inRange(h2a, h2b, func(r *record) bool { return r.Name == "CreateAccessKey" }), func(r *record) []string {
			key, _ := r.Resp["accessKey"].(map[string]any)
			return []string{ts(r.Time), r.ARN, coalesce(field(r.Req, "userName"), r.ARN), field(key, "accessKeyId"), r.ErrorCode}
		}))
	},
	"ingest-per-hour": func(t *testing.T, res *result, c *corpus) {
		objects, inserted := 0, 0
		for _, r := range res.rows {
			o, _ := strconv.Atoi(r[res.col(t, "objects")])
			n, _ := strconv.Atoi(r[res.col(t, "inserted")])
			objects += o
			inserted += n
		}
		if objects != c.files {
			t.Errorf("%d objects in the last day, want the %d files loaded", objects, c.files)
		}
		if inserted != len(c.records) {
			t.Errorf("%d events inserted, want the corpus's %d", inserted, len(c.records))
		}
	},
	"rejects-by-reason": func(t *testing.T, res *result, c *corpus) {
		for _, r := range res.rows {
			if r[0] == "eventTime missing" {
				if r[1] != itoa(c.noEventTime) {
					t.Errorf("%s records without eventTime, want %d", r[1], c.noEventTime)
				}
				return
			}
		}
		t.Errorf("no rejects for a missing eventTime; the corpus has %d such records", c.noEventTime)
	},
	"partitions": func(t *testing.T, res *result, c *corpus) {
		if len(res.rows) == 0 || len(res.rows) > 30 {
			t.Errorf("%d partitions listed", len(res.rows))
		}
		for _, r := range res.rows {
			if !strings.HasPrefix(r[0], "cloudtrail_events_") || !strings.HasPrefix(r[1], "FOR VALUES FROM") {
				t.Errorf("row %v", r)
			}
		}
	},
}
