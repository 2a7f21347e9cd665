package sink

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The attributes CloudTrail's LookupEvents filters on, by their API names.
const (
	AttrEventID      = "EventId"
	AttrEventName    = "EventName"
	AttrReadOnly     = "ReadOnly"
	AttrUsername     = "Username"
	AttrResourceType = "ResourceType"
	AttrResourceName = "ResourceName"
	AttrEventSource  = "EventSource"
	AttrAccessKeyID  = "AccessKeyId"
)

// LookupAttributes lists every attribute key, in CloudTrail's order.
var LookupAttributes = []string{AttrEventID, AttrEventName, AttrReadOnly, AttrUsername,
	AttrResourceType, AttrResourceName, AttrEventSource, AttrAccessKeyID}

// LookupAttribute is one filter: the events whose Key equals Value.
type LookupAttribute struct {
	Key, Value string
}

// LookupCursor is where a page ended: the page after it holds the events
// strictly older in (event_time, event_id) order.
type LookupCursor struct {
	Time time.Time
	ID   string
}

// LookupQuery is one page of a lookup. Its bounds are inclusive, as
// CloudTrail's StartTime and EndTime are.
type LookupQuery struct {
	// Attributes are ANDed; none means every event in the time range.
	Attributes []LookupAttribute
	// Start and End bound event_time, both inclusive.
	Start, End time.Time
	// Insight looks up CloudTrail Insights events instead of management
	// events.
	Insight bool
	// Limit is the page size, at least 1.
	Limit int
	// After, when set, continues after the last event of a page.
	After *LookupCursor
}

// LookupResource is one entry of an event's Resources.
type LookupResource struct {
	ResourceType string `json:"ResourceType"`
	ResourceName string `json:"ResourceName"`
}

// LookupEvent is one event as LookupEvents shows it.
type LookupEvent struct {
	EventID     string
	EventTime   time.Time
	EventName   string
	EventSource string
	// ReadOnly is "true", "false" or "" (unknown), as CloudTrail writes it.
	ReadOnly    string
	AccessKeyID string
	// Username follows pgtrail_lookup_username (migrations/0008).
	Username string
	// Resources follows pgtrail_lookup_resource_keys (migrations/0008).
	Resources []LookupResource
	// Record is the whole record, compact JSON.
	Record json.RawMessage
}

// ErrLookupAttribute reports an attribute key LookupEvents does not know,
// or a ReadOnly value other than true and false.
var ErrLookupAttribute = errors.New("lookup: invalid attribute")

// Reader runs the lookups. It connects as the reader role, in read-only
// transactions, so that nothing it runs can change the events. It is safe
// for concurrent use.
type Reader struct {
	pool  *pgxpool.Pool
	parts partitionCache
	// activity is set once cloudtrail_activity is known to exist;
	// noSummaries once the lookup summaries (0015) are known not to, so
	// that a reader of a database not yet migrated does not ask on every
	// walk.
	activity, noSummaries atomic.Bool
	// warmConns is Config.WarmConns, within the pool's size.
	warmConns int
	// beforeBatch, when set (by tests), runs before each batch of
	// partition statements is sent; afterWalk, when a page's walk ends,
	// with the whole partitions it read and those it skipped.
	beforeBatch func()
	afterWalk   func(walked, skipped int)
}

// OpenReader connects to the database as cfg.ReaderRole (DefaultReaderRole
// when empty): the login role of cfg.URL must be that role, a member of it,
// or a superuser. Every session runs SET ROLE and is read-only.
func OpenReader(ctx context.Context, cfg Config) (*Reader, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %w", scrub(err, cfg.URL))
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pc.MinConns = min(cfg.WarmConns, pc.MaxConns)
	role := cmp.Or(cfg.ReaderRole, DefaultReaderRole)
	pc.ConnConfig.RuntimeParams["application_name"] = "pgtrail lookup"
	pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	// A plan made for the statement's bounds prunes the partitions out of
	// range while planning. A generic plan (which PostgreSQL may choose
	// for a prepared statement after five runs) prunes them only when it
	// starts, after locking every partition and index: 4,761 locks for a
	// year of day partitions, against 29 for one day.
	// The statements that read one whole partition each, which need no
	// pruning, ask for generic plans (Reader.LookupEvents).
	pc.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	pc.ConnConfig.StatementCacheCapacity = lookupStatementCache
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "SET ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			return fmt.Errorf("set role %s (grant it to the login role): %w", role, err)
		}
		if cfg.WarmConns > 0 {
			_, err := warmCatalogs(ctx, c)
			return err
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", scrub(err, cfg.URL))
	}
	return &Reader{pool: pool, warmConns: int(pc.MinConns)}, nil
}

// Close closes every connection.
func (r *Reader) Close() { r.pool.Close() }

// Ping checks that the database answers as the reader role.
func (r *Reader) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var ok bool
	if err := r.pool.QueryRow(ctx, `SELECT has_table_privilege('cloudtrail_events', 'SELECT')`).Scan(&ok); err != nil {
		return fmt.Errorf("postgres: ping: %w", classify(err))
	}
	if !ok {
		return errors.New("postgres: the reader role may not read cloudtrail_events (run pgtrail migrate)")
	}
	return nil
}

// The derivations, as the indexes of migrations/0008 spell them: the
// planner matches an index to a query by the expression's text.
const (
	usernameExpr = `pgtrail_lookup_username(user_identity_type, user_identity_user_name, user_identity_arn, user_identity_principal_id)`
	// resourceKeysExpr is what the resources index holds ("t:" type, "n:"
	// name, "p:" both), resourcesPred its predicate: an event outside it has no
	// resources, or is a data event.
	resourceKeysExpr = `pgtrail_lookup_resource_keys(read_only, event_source, request_parameters, response_elements, resources)`
	resourcesPred    = `pgtrail_lookup_resources_indexed(management_event, read_only, event_source, resources)`
)

// lookupWindows are the spans of time a range is read in, newest first,
// by the history page's queries (Reader.windows), and by LookupEvents where
// it cannot read partition by partition (a partition of unknown bounds):
// a busy value's page is found in the newest hour, whose rows an index on
// the value alone (GIN, or a bitmap) must all fetch and sort, and no
// statement plans and locks more than 92 day partitions (with their
// indexes, some 1,200 locks: a year's worth in one statement would take
// 4,800, more than a default server's lock table holds for two such
// lookups at once). The last span repeats until the range is covered.
var lookupWindows = []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 31 * 24 * time.Hour, 92 * 24 * time.Hour}

// lookupWindow runs one window's statement, over the half-open
// [q.Start, q.End) that Reader.windows cuts.
func (r *Reader) lookupWindow(ctx context.Context, q LookupQuery) ([]lookupRow, error) {
	sql, args, err := lookupSQL(q, true)
	if err != nil {
		return nil, err
	}
	rows, err := r.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: lookup: %w", classify(err))
	}
	return lookupRows(rows)
}

// lookupRow is an event as a lookup's statement reads it: without its
// Username and Resources, derived once the page is known
// (Reader.withDerived), from the columns kept here.
type lookupRow struct {
	LookupEvent
	readOnly                                 *bool
	source                                   *string
	request, response, resources             []byte
	identityType, userName, arn, principalID *string
}

// lookupColumns are what a lookup's statements read of an event, in
// lookupRows' order. Username and Resources are not derived there: each
// statement that calls a derivation plans it again, Resources'
// (pgtrail_lookup_resource_keys, a SQL function that cannot be inlined)
// 0.7 ms a statement, which for a walk of a statement per partition cost
// more than the walk; Username's (pgtrail_lookup_username, inlined: its
// text parsed and analysed again) a fifth of planning a whole
// partition's statement.
const lookupColumns = `SELECT event_id, event_time, event_name, event_source, read_only, user_identity_access_key_id,
       user_identity_type, user_identity_user_name, user_identity_arn, user_identity_principal_id,
       request_parameters, response_elements, resources, record`

// lookupRows reads the rows of a statement of lookupColumns, and closes
// them.
func lookupRows(rows pgx.Rows) ([]lookupRow, error) {
	defer rows.Close()
	var out []lookupRow
	for rows.Next() {
		var (
			e         lookupRow
			name, key *string
			record    []byte
		)
		if err := rows.Scan(&e.EventID, &e.EventTime, &name, &e.source, &e.readOnly, &key,
			&e.identityType, &e.userName, &e.arn, &e.principalID,
			&e.request, &e.response, &e.resources, &record); err != nil {
			return nil, fmt.Errorf("postgres: lookup: %w", err)
		}
		e.EventName, e.EventSource, e.AccessKeyID = deref(name), deref(e.source), deref(key)
		if e.readOnly != nil {
			e.ReadOnly = strconv.FormatBool(*e.readOnly)
		}
		e.Record = compact(record)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: lookup: %w", classify(err))
	}
	return out, nil
}

// derivedSQL derives the Username and the Resources of the events given
// as arrays of the derivations' arguments, in their order: one statement,
// one planning of each derivation, for a page.
const derivedSQL = `SELECT ` + usernameExpr + `, ` + resourceKeysExpr + `
FROM unnest($1::boolean[], $2::text[], $3::jsonb[], $4::jsonb[], $5::jsonb[], $6::text[], $7::text[], $8::text[], $9::text[])
    WITH ORDINALITY AS e(read_only, event_source, request_parameters, response_elements, resources,
                         user_identity_type, user_identity_user_name, user_identity_arn, user_identity_principal_id, n)
ORDER BY n`

// withDerived returns the page's events with their Username and
// Resources.
func (r *Reader) withDerived(ctx context.Context, page []lookupRow) ([]LookupEvent, error) {
	if len(page) == 0 {
		return nil, nil
	}
	var (
		readOnly                     = make([]*bool, len(page))
		request, response, resources = make([][]byte, len(page)), make([][]byte, len(page)), make([][]byte, len(page))
		// source, identity type, user name, ARN, principal ID
		text [5][]*string
	)
	for i := range text {
		text[i] = make([]*string, len(page))
	}
	for i, e := range page {
		readOnly[i], request[i], response[i], resources[i] = e.readOnly, e.request, e.response, e.resources
		text[0][i], text[1][i], text[2][i], text[3][i], text[4][i] = e.source, e.identityType, e.userName, e.arn, e.principalID
	}
	rows, err := r.pool.Query(ctx, derivedSQL, readOnly, text[0], request, response, resources, text[1], text[2], text[3], text[4])
	if err != nil {
		return nil, fmt.Errorf("postgres: lookup: username and resources: %w", classify(err))
	}
	type derived struct {
		user *string
		keys []string
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (d derived, err error) {
		return d, row.Scan(&d.user, &d.keys)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: lookup: username and resources: %w", classify(err))
	}
	if len(got) != len(page) {
		return nil, fmt.Errorf("postgres: lookup: username and resources of %d events, not %d", len(got), len(page))
	}
	out := make([]LookupEvent, len(page))
	for i, e := range page {
		out[i] = e.LookupEvent
		out[i].Username, out[i].Resources = deref(got[i].user), resourcesOf(got[i].keys)
	}
	return out, nil
}

// lookupSQL builds the page's query over cloudtrail_events. Each attribute
// is one condition that an index of 0003 or 0008 serves; the bounds on
// event_time prune the partitions out of range, the cursor's among them.
func lookupSQL(q LookupQuery, endExclusive bool) (string, []any, error) {
	if q.Limit < 1 {
		return "", nil, fmt.Errorf("lookup: limit %d, want at least 1", q.Limit)
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	end := q.End
	if q.After != nil {
		// The cursor's instant is in range (its smaller IDs follow it).
		at := q.After.Time
		if endExclusive {
			at = at.Add(usec)
		}
		if at.Before(end) {
			end = at
		}
	}
	where = append(where, timeConds(q.Attributes, q.Start, end, !endExclusive, arg)...)
	if q.After != nil {
		where = append(where, "(event_time, event_id) < ("+arg(q.After.Time)+", "+arg(q.After.ID)+")")
	}
	conds, err := lookupConds(q, arg)
	if err != nil {
		return "", nil, err
	}
	where = append(where, conds...)
	sql := lookupColumns + `
FROM cloudtrail_events
WHERE ` + strings.Join(where, "\n  AND ") + `
ORDER BY event_time DESC, event_id DESC
LIMIT ` + arg(q.Limit)
	return sql, args, nil
}

// timeConds bound event_time to [lo, hi), or [lo, hi] when inclusive, in
// a statement over cloudtrail_events that filters on attrs. The bounds
// prune the partitions out of range while planning.
//
// Where attrs look up a ResourceType or a ResourceName, the resources
// index is GIN over pgtrail_lookup_resource_keys. With plain bounds, the
// planner ANDs it with the BRIN index on event_time, whose bitmap is
// lossy: every row found is checked again by computing the keys (some
// 70 µs a row; a busy type's day, 25 to 60 ms). There the bounds that
// prune are the whole UTC days the range touches, which the BRIN index
// cannot narrow, and the exact ones are written so that no index takes
// them.
func timeConds(attrs []LookupAttribute, lo, hi time.Time, inclusive bool, arg func(any) string) []string {
	op := " < "
	if inclusive {
		op = " <= "
	}
	if !slices.ContainsFunc(attrs, func(a LookupAttribute) bool {
		return a.Key == AttrResourceType || a.Key == AttrResourceName
	}) {
		return []string{"event_time >= " + arg(lo), "event_time" + op + arg(hi)}
	}
	day := func(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
	// The end of hi's day; hi itself where it is a day's start and
	// excluded, so that the day after is not read for nothing.
	pruneHi := day(hi).Add(24 * time.Hour)
	if !inclusive && day(hi).Equal(hi) {
		pruneHi = hi
	}
	return []string{"event_time >= " + arg(day(lo)), "event_time < " + arg(pruneHi),
		"(event_time >= " + arg(lo) + ") IS TRUE", "(event_time" + op + arg(hi) + ") IS TRUE"}
}

// lookupConds are a page's conditions but its bounds: the category of
// events and the attributes, their values bound through arg.
func lookupConds(q LookupQuery, arg func(any) string) ([]string, error) {
	var where []string
	if q.Insight {
		where = append(where, "event_type = 'AwsCloudTrailInsight'")
	} else {
		// Event history holds management events: not Insights, not data
		// events (managementEvent false). Records older than the
		// managementEvent field count as management events.
		where = append(where, "event_type IS DISTINCT FROM 'AwsCloudTrailInsight'", "management_event IS NOT FALSE")
	}
	for _, a := range q.Attributes {
		cond, err := attributeCond(a, arg)
		if err != nil {
			return nil, err
		}
		where = append(where, cond)
	}
	return where, nil
}

// attributeCond is the condition of one lookup attribute, its value bound
// through arg. Each is served by an index of 0003 or 0008.
func attributeCond(a LookupAttribute, arg func(any) string) (string, error) {
	switch a.Key {
	case AttrEventID:
		return "event_id = " + arg(a.Value), nil
	case AttrEventName:
		return "event_name = " + arg(a.Value), nil
	case AttrEventSource:
		return "event_source = " + arg(a.Value), nil
	case AttrAccessKeyID:
		return "user_identity_access_key_id = " + arg(a.Value), nil
	case AttrUsername:
		return usernameExpr + " = " + arg(a.Value), nil
	case AttrReadOnly:
		b, err := strconv.ParseBool(a.Value)
		if err != nil || (a.Value != "true" && a.Value != "false") {
			return "", fmt.Errorf("%w: ReadOnly is true or false, got %q", ErrLookupAttribute, a.Value)
		}
		return "read_only = " + arg(b), nil
	case AttrResourceType, AttrResourceName:
		prefix := "t:"
		if a.Key == AttrResourceName {
			prefix = "n:"
		}
		return resourcesPred + " AND " + resourceKeysExpr + " @> ARRAY[" + arg(prefix+a.Value) + "::text]", nil
	}
	return "", fmt.Errorf("%w: unknown key %q", ErrLookupAttribute, a.Key)
}

// ExplainLookup returns the plan of the statement that reads q's range in
// one window, run with EXPLAIN (ANALYZE, BUFFERS): for the benchmark and
// for anyone asking why a lookup is slow.
func (r *Reader) ExplainLookup(ctx context.Context, q LookupQuery) (string, error) {
	sql, args, err := lookupSQL(q, false)
	if err != nil {
		return "", err
	}
	rows, err := r.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+sql, args...)
	if err != nil {
		return "", fmt.Errorf("postgres: explain lookup: %w", classify(err))
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("postgres: explain lookup: %w", classify(err))
	}
	return strings.Join(lines, "\n"), nil
}

// resourcesOf reads the "p:" keys of pgtrail_lookup_resource_keys ("p:",
// the type, a space, the name) in order: by type, then name.
func resourcesOf(keys []string) []LookupResource {
	var out []LookupResource
	for _, k := range keys {
		if p, ok := strings.CutPrefix(k, "p:"); ok {
			t, n, _ := strings.Cut(p, " ")
			out = append(out, LookupResource{ResourceType: t, ResourceName: n})
		}
	}
	slices.SortFunc(out, func(a, b LookupResource) int {
		return cmp.Or(strings.Compare(a.ResourceType, b.ResourceType), strings.Compare(a.ResourceName, b.ResourceName))
	})
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// compact is the record without the spaces jsonb's text form adds; a record
// that does not parse (a json column holding anything) is returned as is.
func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	buf.Grow(len(b))
	if err := json.Compact(&buf, b); err != nil {
		return json.RawMessage(b)
	}
	return buf.Bytes()
}
