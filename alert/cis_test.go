package alert_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/pgtest"
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

// TestCISViewsAgreeWithRules stores the corpus with the built-in pack's
// alerts and checks, for each CIS monitoring control, that its view
// (ct_cis_findings, migrations/0004 and later) and its built-in rule
// (tagged cis.aws-foundations.4-N) find the same events: the view is what
// an analyst queries, the rule what pages them, and a control must not
// mean two things.
func TestCISViewsAgreeWithRules(t *testing.T) {
	ctx := context.Background()
	dir := corpus.Dir(t)
	pg, err := sink.Open(ctx, sink.Config{URL: pgtest.New(t)}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	set := sigma.Builtin()
	pg.SetMatcher(alert.NewRules(set))
	files, err := worker.LogFiles([]string{filepath.Join(dir, "s3")})
	if err != nil {
		t.Fatal(err)
	}
	proc := worker.NewProcessor(worker.Config{}, nil, pg, nil, nil, zaptest.NewLogger(t))
	for _, f := range files {
		if _, err := proc.File(ctx, f); err != nil {
			t.Fatalf("ingest %s: %v", f, err)
		}
	}

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
		if len(view) == 0 {
			// The corpus's root-user records share their eventID and time
			// with records stored before them, so that none is stored.
			t.Logf("CIS %-5s not exercised by the corpus (%s)", control, r.File)
			continue
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
