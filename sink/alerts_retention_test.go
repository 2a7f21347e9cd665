package sink_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// TestRetentionDeletesSettledAlerts: retention deletes, as the writer,
// the settled alerts of events older than the cutoff, the settled summaries
// whose window ended by then and the delivery records of both; it keeps
// alerts still waiting for delivery, younger alerts and summaries, and it
// refuses a cutoff past the retention floor.
func TestRetentionDeletesSettledAlerts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHostileDB(t, 0, sink.Config{RetentionDays: 30})
	now := time.Now()
	day := func(ago int) time.Time { return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -ago).Add(time.Hour) }
	alerts := []struct {
		name    string
		ago     int
		settled bool
	}{
		{"old-sent", 40, true}, {"old-waiting", 40, false}, {"young-sent", 20, true}, {"edge-sent", 30, true},
	}
	for _, a := range alerts {
		at := day(a.ago)
		id := sink.AlertID("rule-r", a.name, at)
		status, settled := "sending", any(nil)
		if a.settled {
			status, settled = "sent", at
		}
		if _, err := h.owner.Pool().Exec(ctx, `INSERT INTO cloudtrail_alerts (id, rule_id, title, event_id, event_time, status, settled_at)
            VALUES ($1, 'rule-r', 'r', $2, $3, $4, $5)`, id, a.name, at, status, settled); err != nil {
			t.Fatal(err)
		}
		if _, err := h.owner.Pool().Exec(ctx, `INSERT INTO cloudtrail_alert_deliveries (message_id, destination, attempts)
            VALUES ($1, 'webhook', 1)`, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct {
		ago     int
		settled bool
	}{{40, true}, {41, false}, {20, true}} {
		start := day(s.ago)
		settled := any(nil)
		if s.settled {
			settled = start
		}
		if _, err := h.owner.Pool().Exec(ctx, `INSERT INTO cloudtrail_alert_summaries (id, rule_id, title, window_start, window_end, next_attempt, settled_at)
            VALUES (gen_random_uuid(), 'rule-r', 'r', $1, $2, $2, $3)`, start, start.Add(time.Hour), settled); err != nil {
			t.Fatal(err)
		}
	}

	w := openAs(t, asUser(t, h.url, h.writerLogin), sink.Config{})
	if _, err := w.DeleteAlertsBefore(ctx, sink.RetentionCutoff(now, 5), false); err == nil || !strings.Contains(err.Error(), "retention floor") {
		t.Errorf("cutoff 5 days back under a floor of 30: %v, want a refusal", err)
	}
	cutoff := sink.RetentionCutoff(now, 30)
	want := sink.AlertsDeleted{Alerts: 1, Summaries: 1, Deliveries: 1}
	if d, err := w.DeleteAlertsBefore(ctx, cutoff, true); err != nil || d != want {
		t.Errorf("dry run: %+v, %v; want %+v", d, err, want)
	}
	if n := count(t, h.owner, `SELECT count(*) FROM cloudtrail_alerts`); n != len(alerts) {
		t.Fatalf("the dry run deleted alerts: %d left", n)
	}
	if d, err := w.DeleteAlertsBefore(ctx, cutoff, false); err != nil || d != want {
		t.Errorf("retention: %+v, %v; want %+v", d, err, want)
	}
	left := count(t, h.owner, `SELECT count(*) FROM cloudtrail_alerts WHERE event_id IN ('old-waiting', 'young-sent', 'edge-sent')`)
	if total := count(t, h.owner, `SELECT count(*) FROM cloudtrail_alerts`); left != 3 || total != 3 {
		t.Errorf("alerts left: %d of the three to keep, %d in all", left, total)
	}
	if n := count(t, h.owner, `SELECT count(*) FROM cloudtrail_alert_deliveries`); n != 3 {
		t.Errorf("%d delivery records left, want 3", n)
	}
	if n := count(t, h.owner, `SELECT count(*) FROM cloudtrail_alert_summaries WHERE settled_at IS NULL OR window_start > $1`, cutoff); n != 2 {
		t.Errorf("%d of the two summaries to keep left", n)
	}
	if d, err := w.DeleteAlertsBefore(ctx, cutoff, false); err != nil || d != (sink.AlertsDeleted{}) {
		t.Errorf("second run: %+v, %v; want nothing deleted", d, err)
	}
	denied(t, h.as(t, h.readerLogin), `SELECT * FROM pgtrail_delete_alerts_before('2016-03-01', true)`)
}

// TestRunRetentionDeletesSettledAlerts: the retention that pgtrail run
// applies deletes settled alerts with their days, and keeps waiting ones.
func TestRunRetentionDeletesSettledAlerts(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	old := time.Now().UTC().AddDate(0, 0, -40)
	for _, a := range []struct {
		name, status string
		settled      any
	}{{"old-sent", "sent", old}, {"old-waiting", "sending", nil}} {
		if _, err := pg.Pool().Exec(context.Background(), `INSERT INTO cloudtrail_alerts (id, rule_id, title, event_id, event_time, status, settled_at)
            VALUES ($1, 'rule-r', 'r', $2, $3, $4, $5)`, sink.AlertID("rule-r", a.name, old), a.name, old, a.status, a.settled); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pg.RunRetention(ctx, 10, time.Hour)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for count(t, pg, `SELECT count(*) FROM cloudtrail_alerts`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("RunRetention did not delete the settled alert")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_alerts WHERE event_id = 'old-waiting'`); n != 1 {
		t.Errorf("the waiting alert is gone")
	}
}
