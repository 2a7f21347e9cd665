package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// TestAlertRoles: the writer runs the relay (claims, records deliveries)
// but cannot change what an alert says nor delete one; the reader reads
// the alerts and the analyst's views, and writes nothing.
func TestAlertRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.New(t)
	owner := openAs(t, dbURL, sink.Config{})
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	id := sink.AlertID("rule-1", "e1", at)
	if id != sink.AlertID("rule-1", "e1", at.In(time.FixedZone("x", 3600))) || id == sink.AlertID("rule-2", "e1", at) {
		t.Fatalf("AlertID is not a function of the rule and the event's key")
	}
	if _, err := owner.Pool().Exec(ctx, `INSERT INTO cloudtrail_alerts (id, rule_id, title, level, event_id, event_time, account_id, principal_arn)
        VALUES ($1, 'rule-1', 'Trail stopped', 'high', 'e1', $2, '111122223333', 'arn:aws:iam::111122223333:user/a')`, id, at); err != nil {
		t.Fatal(err)
	}

	pg := openAs(t, loginRole(t, dbURL, sink.DefaultWriterRole), sink.Config{MaxConns: 2})
	claimed, res, err := pg.ClaimAlerts(ctx, sink.ClaimOptions{Limit: 5, Lease: time.Minute, MaxAge: time.Hour,
		Throttle: 10, Window: time.Minute, Destinations: []string{"sns"}})
	if err != nil || len(claimed) != 1 || claimed[0].ID != id || res.Raised["high"] != 1 {
		t.Fatalf("ClaimAlerts as the writer: %+v %+v %v", claimed, res, err)
	}
	if err := pg.FinishAlerts(ctx, []sink.Outcome{{ID: id, Attempts: []sink.Attempt{{Destination: "sns"}}, Settled: true}}); err != nil {
		t.Fatalf("FinishAlerts as the writer: %v", err)
	}
	if _, err := pg.ClaimSummaries(ctx, 5, time.Minute, []string{"sns"}); err != nil {
		t.Fatalf("ClaimSummaries as the writer: %v", err)
	}
	if b, err := pg.AlertBacklog(ctx, []string{"sns"}); err != nil || b.Waiting["sns"] != 0 {
		t.Fatalf("AlertBacklog as the writer: %+v %v", b, err)
	}
	if n := count(t, owner, `SELECT count(*) FROM cloudtrail_alerts WHERE status = 'sent' AND settled_at IS NOT NULL`); n != 1 {
		t.Errorf("%d alerts sent, want 1", n)
	}
	w := connect(t, loginRole(t, dbURL, sink.DefaultWriterRole))
	denied(t, w, `UPDATE cloudtrail_alerts SET title = 'nothing to see'`)
	denied(t, w, `UPDATE cloudtrail_alerts SET acknowledged_at = now()`)
	denied(t, w, `DELETE FROM cloudtrail_alerts`)
	denied(t, w, `DELETE FROM cloudtrail_alert_deliveries`)
	denied(t, w, `TRUNCATE cloudtrail_alerts`)

	r := connect(t, loginRole(t, dbURL, sink.DefaultReaderRole))
	var alerts, principals int
	if err := r.QueryRow(ctx, `SELECT alerts, principals FROM ct_open_alerts_by_rule WHERE rule_id = 'rule-1'`).Scan(&alerts, &principals); err != nil || alerts != 1 || principals != 1 {
		t.Errorf("ct_open_alerts_by_rule: %d, %d, %v", alerts, principals, err)
	}
	var level string
	if err := r.QueryRow(ctx, `SELECT max_level FROM ct_open_alerts_by_account WHERE account_id = '111122223333'`).Scan(&level); err != nil || level != "high" {
		t.Errorf("ct_open_alerts_by_account: %q, %v", level, err)
	}
	if err := r.QueryRow(ctx, `SELECT max_level FROM ct_open_alerts_by_principal WHERE principal_arn LIKE '%user/a'`).Scan(&level); err != nil || level != "high" {
		t.Errorf("ct_open_alerts_by_principal: %q, %v", level, err)
	}
	denied(t, r, `UPDATE cloudtrail_alerts SET status = 'sent'`)
	denied(t, r, `INSERT INTO cloudtrail_alert_deliveries (message_id, destination) VALUES (gen_random_uuid(), 'x')`)

	// Acknowledged, an alert leaves the open views.
	if _, err := owner.Pool().Exec(ctx, `UPDATE cloudtrail_alerts SET acknowledged_at = now(), acknowledged_by = 'analyst'`); err != nil {
		t.Fatal(err)
	}
	if n := count(t, owner, `SELECT count(*) FROM ct_open_alerts_by_rule`); n != 0 {
		t.Errorf("%d open rules after acknowledging, want 0", n)
	}
}
