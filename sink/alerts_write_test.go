package sink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// hitMatcher raises rule r1 on every event whose record holds "hit", and
// r2 too on those that hold "hit-2".
type hitMatcher struct{}

var (
	ruleOne = &sink.AlertRule{ID: "r1", Title: "Hit", Level: "high", Author: "tests", Tags: []string{"attack.t1"}, File: "hit.yml"}
	ruleTwo = &sink.AlertRule{ID: "r2", Title: "Second hit", Level: "low", Author: "tests"}
)

func (hitMatcher) Match(e *cloudtrail.Event) []*sink.AlertRule {
	record := e.Record
	switch {
	case bytes.Contains(record, []byte("hit-2")):
		return []*sink.AlertRule{ruleOne, ruleTwo}
	case bytes.Contains(record, []byte("hit")):
		return []*sink.AlertRule{ruleOne}
	}
	return nil
}

// streamed is an object whose rows are read once, through the staging path.
func streamed(key string, items ...cloudtrail.Entry) *testObject {
	return &testObject{Bucket: "bucket", Key: key, Size: 1, Stream: &rows{items: items}}
}

// alerts returns the stored alerts as "rule/event" → count.
func alerts(t *testing.T, pg *sink.Postgres) map[string]int {
	t.Helper()
	rs, err := pg.Pool().Query(context.Background(), `SELECT rule_id || '/' || event_id, count(*) FROM cloudtrail_alerts GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[string]int{}
	for rs.Next() {
		var k string
		var n int
		if err := rs.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

func wantAlerts(t *testing.T, pg *sink.Postgres, step string, want ...string) {
	t.Helper()
	got := alerts(t, pg)
	if len(got) != len(want) {
		t.Errorf("%s: alerts %v, want %v", step, got, want)
		return
	}
	for _, k := range want {
		if got[k] != 1 {
			t.Errorf("%s: alerts %v, want %v once each", step, got, want)
			return
		}
	}
}

// TestWriteRaisesAlertsOfNewEventsOnly: by either path, an event that a
// write inserts raises its alerts in the same transaction; an event stored
// already (a redelivery, a second trail, the same event twice in a batch)
// raises none again.
func TestWriteRaisesAlertsOfNewEventsOnly(t *testing.T) {
	t.Parallel()
	for name, obj := range map[string]func(string, ...cloudtrail.Entry) *testObject{"buffered": buffered, "streamed": streamed} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pg := setup(t)
			ctx := context.Background()
			at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
			write := func(objs ...*testObject) {
				t.Helper()
				if _, err := write(ctx, pg, objs); err != nil {
					t.Fatal(err)
				}
			}
			// Stored before alerts were on: a duplicate of it raises
			// nothing, not even for the first time.
			write(obj("z", event("hit-z", at, "z")))
			pg.SetMatcher(hitMatcher{})
			write(obj("y", event("hit-z", at, "y")))
			wantAlerts(t, pg, "a duplicate stored before alerts")

			write(obj("a", event("hit-1", at, "a"), event("miss-1", at, "a"), event("hit-2", at.Add(time.Second), "a")))
			wantAlerts(t, pg, "first write", "r1/hit-1", "r1/hit-2", "r2/hit-2")

			write(obj("a", event("hit-1", at, "a"), event("miss-1", at, "a"), event("hit-2", at.Add(time.Second), "a")))
			wantAlerts(t, pg, "redelivery", "r1/hit-1", "r1/hit-2", "r2/hit-2")

			write(obj("b", event("hit-1", at, "b"), event("hit-3", at.AddDate(0, 0, 1), "b")))
			wantAlerts(t, pg, "second trail", "r1/hit-1", "r1/hit-2", "r2/hit-2", "r1/hit-3")

			write(obj("c", event("hit-4", at, "c")), obj("d", event("hit-4", at, "d"), event("miss-2", at, "d")))
			wantAlerts(t, pg, "one event in two objects", "r1/hit-1", "r1/hit-2", "r2/hit-2", "r1/hit-3", "r1/hit-4")

			var title, level, author, file, account string
			var tags []string
			var eventTime time.Time
			if err := pg.Pool().QueryRow(ctx, `SELECT title, level, author, rule_file, tags, event_time, coalesce(account_id, '')
                FROM cloudtrail_alerts WHERE rule_id = 'r1' AND event_id = 'hit-2'`).Scan(&title, &level, &author, &file, &tags, &eventTime, &account); err != nil {
				t.Fatal(err)
			}
			if title != "Hit" || level != "high" || author != "tests" || file != "hit.yml" || len(tags) != 1 || !eventTime.Equal(at.Add(time.Second)) {
				t.Errorf("alert %q %q %q %q %v %v", title, level, author, file, tags, eventTime)
			}
			var id string
			if err := pg.Pool().QueryRow(ctx, `SELECT id::text FROM cloudtrail_alerts WHERE rule_id = 'r2'`).Scan(&id); err != nil ||
				id != sink.AlertID("r2", "hit-2", at.Add(time.Second)) {
				t.Errorf("alert id %s, %v: not AlertID's", id, err)
			}
		})
	}
}

// TestWriteAlertsOptimisticCopy: once the buffered path COPYs without
// probing, a batch that meets a stored event falls back, and still raises
// the alerts of its new events only.
func TestWriteAlertsOptimisticCopy(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	pg.SetMatcher(hitMatcher{})
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 6 { // enough clean batches to stop probing
		key := string(rune('a' + i))
		if _, err := write(ctx, pg, []*testObject{buffered(key, event("miss-"+key, at, key))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := write(ctx, pg, []*testObject{buffered("h", event("hit-1", at, "h"))}); err != nil {
		t.Fatal(err)
	}
	pg.SetMatcher(nil)
	if _, err := write(ctx, pg, []*testObject{buffered("j", event("hit-6", at, "j"))}); err != nil {
		t.Fatal(err)
	}
	pg.SetMatcher(hitMatcher{})
	res, err := write(ctx, pg, []*testObject{buffered("i", event("hit-1", at, "i"), event("hit-5", at, "i"), event("hit-6", at, "i"), event("miss-a", at, "i"))})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Inserted != 1 || res[0].Duplicates != 3 {
		t.Errorf("%+v", res[0])
	}
	wantAlerts(t, pg, "after the fallback", "r1/hit-1", "r1/hit-5")
}

// TestWriteAlertsOfRefusedEvents: an event PostgreSQL refuses is a reject
// and raises nothing; the others of its batch raise theirs, whichever way
// the refusal is found (refuse.go), one at a time included.
func TestWriteAlertsOfRefusedEvents(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := write(ctx, pg, []*testObject{buffered("old", event("hit-old", at, "old"))}); err != nil {
		t.Fatal(err)
	}
	pg.SetMatcher(hitMatcher{})
	if _, err := write(ctx, pg, []*testObject{buffered("first", event("hit-0", at, "first"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := write(ctx, pg, []*testObject{buffered("a", refusedRow("hit-r", "a", overflow), event("hit-a", at, "a"))}); err != nil {
		t.Fatal(err)
	}
	wantAlerts(t, pg, "a refused number", "r1/hit-0", "r1/hit-a")

	// A constraint no cast shows: the events are inserted one at a time.
	if _, err := pg.Pool().Exec(ctx, `ALTER TABLE cloudtrail_events ADD CONSTRAINT no_hit_c CHECK (event_id <> 'hit-c')`); err != nil {
		t.Fatal(err)
	}
	res, err := write(ctx, pg, []*testObject{streamed("b", event("hit-c", at, "b"), event("hit-d", at, "b"), event("hit-old", at, "b"))})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Inserted != 1 || res[0].Rejected != 1 {
		t.Errorf("%+v", res[0])
	}
	wantAlerts(t, pg, "one at a time", "r1/hit-0", "r1/hit-a", "r1/hit-d")
}

// TestWriteWithoutMatcher stores no alert.
func TestWriteWithoutMatcher(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := write(context.Background(), pg, []*testObject{buffered("a", event("hit-1", at, "a")), streamed("b", event("hit-2", at, "b"))}); err != nil {
		t.Fatal(err)
	}
	wantAlerts(t, pg, "no matcher")
}

// TestWriteAlertsOfTheStoredCopy: of two copies of one event that differ
// (two files that disagree), the one stored raises the alerts, by either
// path, not the other.
func TestWriteAlertsOfTheStoredCopy(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	copyOf := func(key string, hit bool) cloudtrail.Entry {
		e := event("twin", at, key)
		if hit {
			e.Event.Record = json.RawMessage(`{"eventID":"twin","note":"hit"}`)
		}
		return e
	}
	for _, tc := range []struct {
		name string
		objs func() []*testObject
		want []string
	}{
		{"streamed, the first copy quiet", func() []*testObject {
			return []*testObject{streamed("a", copyOf("a", false), copyOf("a", true))}
		}, nil},
		{"streamed, the first copy a hit", func() []*testObject {
			return []*testObject{streamed("a", copyOf("a", true), copyOf("a", false))}
		}, []string{"r1/twin"}},
		{"buffered, the first copy quiet", func() []*testObject {
			return []*testObject{buffered("a", copyOf("a", false)), buffered("b", copyOf("b", true))}
		}, nil},
		{"buffered, the first copy a hit", func() []*testObject {
			return []*testObject{buffered("a", copyOf("a", true)), buffered("b", copyOf("b", false))}
		}, []string{"r1/twin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pg := setup(t)
			pg.SetMatcher(hitMatcher{})
			if _, err := write(context.Background(), pg, tc.objs()); err != nil {
				t.Fatal(err)
			}
			wantAlerts(t, pg, tc.name, tc.want...)
			var hit bool
			if err := pg.Pool().QueryRow(context.Background(), `SELECT record::text LIKE '%hit%' FROM cloudtrail_events`).Scan(&hit); err != nil {
				t.Fatal(err)
			}
			if hit != (len(tc.want) > 0) {
				t.Errorf("the stored copy is the hit: %v; its alerts %v", hit, tc.want)
			}
		})
	}
}
