package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/testdb"
	"github.com/pgtrail/pgtrail/sigma"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// cisDifferences are the events on which a CIS view and its built-in rule
// are allowed to disagree, by control and event id, each with the reason.
// It is empty: on the corpus, every view and its rule find the same events.
// An entry needs a reason that names the construct that differs (a SQL
// column normalized differently from the record's field, say).
var cisDifferences = map[string]map[string]string{}

// TestCISViewsAgreeWithRules stores the corpus, the built-in CIS rules'
// test events and one event for each eventSource and eventName a CIS rule
// lists, with the built-in pack's alerts, and checks, for each CIS monitoring control, that its view
// (ct_cis_findings, migrations/0004 and later) and its built-in rule
// (tagged cis.aws-foundations.4-N) find the same events: the view is what
// an analyst queries, the rule what pages them, and a control must not
// mean two things.
func TestCISViewsAgreeWithRules(t *testing.T) {
	dir := corpus.Dir(t)
	pg, _ := testdb.Open(t)
	set := sigma.Builtin()
	pg.SetMatcher(alert.NewRules(set))
	files, err := worker.LogFiles([]string{filepath.Join(dir, "s3")})
	if err != nil {
		t.Fatal(err)
	}
	testdb.Ingest(t, pg, append(files, cisRecordsFile(t)))

	controls := 0
	total := 0
	for _, r := range set.Rules() {
		control := cisControl(r)
		if control == "" {
			continue
		}
		controls++
		view := eventKeys(t, pg, `SELECT event_id || ' ' || event_time FROM ct_cis_findings WHERE cis_control = $1`, control)
		rule := eventKeys(t, pg, `SELECT event_id || ' ' || event_time FROM cloudtrail_alerts WHERE rule_id = $1`, r.ID)
		total += len(view)
		explained := cisDifferences[control]
		for _, k := range diff(view, rule) {
			if explained[eventID(k)] == "" {
				t.Errorf("CIS %s: event %s is in the view, not raised by rule %s (%s)", control, k, r.ID, r.File)
			}
		}
		for _, k := range diff(rule, view) {
			if explained[eventID(k)] == "" {
				t.Errorf("CIS %s: event %s raised by rule %s (%s), not in the view", control, k, r.ID, r.File)
			}
		}
		t.Logf("CIS %-5s %3d events (%s)", control, len(view), r.File)
	}
	if controls != 15 {
		t.Errorf("%d built-in rules name a CIS control, want 15", controls)
	}
	if total == 0 {
		t.Fatal("the corpus gave no CIS finding: nothing was compared")
	}
	t.Logf("%d CIS findings, the same from the views and the rules", total)
}

// cisRecordsFile writes a CloudTrail log file of the built-in CIS rules'
// test events (sigma/builtin/testdata) and of one event for each
// eventSource and eventName that a CIS rule's selections list, so that
// every name of every list is compared, not only those the corpus holds
// (it has no ModifySecurityGroupRules, for one).
func cisRecordsFile(t *testing.T) string {
	t.Helper()
	builtin := filepath.Join("..", "sigma", "builtin")
	rules, err := filepath.Glob(filepath.Join(builtin, "cis_*.yml"))
	if err != nil || len(rules) != 15 {
		t.Fatalf("built-in CIS rules: %v, %v", rules, err)
	}
	var records []json.RawMessage
	for _, file := range rules {
		base := strings.TrimSuffix(filepath.Base(file), ".yml")
		for _, kind := range []string{"match", "nomatch"} {
			b, err := os.ReadFile(filepath.Join(builtin, "testdata", base+"."+kind+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var recs []json.RawMessage
			if err := json.Unmarshal(b, &recs); err != nil {
				t.Fatalf("%s: %v", base, err)
			}
			records = append(records, recs...)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var rule struct {
			Detection map[string]yaml.Node
		}
		if err := yaml.Unmarshal(b, &rule); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for name, sel := range rule.Detection {
			var fields map[string]any
			if name == "condition" || sel.Decode(&fields) != nil {
				continue // a list of maps or of keywords: none in the pack
			}
			for _, src := range strings1(fields["eventSource"]) {
				for _, ev := range strings1(fields["eventName"]) {
					rec, _ := json.Marshal(map[string]any{
						"eventVersion": "1.09", "eventTime": "2026-11-30T12:00:00Z",
						"eventID":     fmt.Sprintf("cis-names-%s-%s", base, ev),
						"eventSource": src, "eventName": ev, "eventType": "AwsApiCall",
						"awsRegion": "eu-west-1", "recipientAccountId": "111122223333",
						"userIdentity": map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
					})
					records = append(records, rec)
				}
			}
		}
	}
	b, err := json.Marshal(map[string]any{"Records": records})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cis.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// strings1 returns a YAML value that is a string or a list of strings as
// a list; nil for anything else.
func strings1(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// cisControl returns the CIS control (4.N) a built-in rule is tagged with.
func cisControl(r *sigma.Rule) string {
	for _, tag := range r.Tags {
		if n, ok := strings.CutPrefix(tag, "cis.aws-foundations.4-"); ok {
			return "4." + n
		}
	}
	return ""
}

func eventKeys(t *testing.T, pg *sink.Postgres, sql string, arg string) []string {
	t.Helper()
	rows, err := pg.Pool().Query(context.Background(), sql, arg)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// diff returns the keys of a that b lacks; both are sorted.
func diff(a, b []string) []string {
	var out []string
	for _, k := range a {
		if _, found := slices.BinarySearch(b, k); !found {
			out = append(out, k)
		}
	}
	return out
}

func eventID(key string) string {
	id, _, _ := strings.Cut(key, " ")
	return id
}
