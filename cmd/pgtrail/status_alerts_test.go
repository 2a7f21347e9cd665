package main

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStatusAlerts(t *testing.T) {
	t.Parallel()
	db := migrated(t)
	code, out, _ := runCommand(t, t.Context(), map[string]string{"DATABASE_URL": db}, "status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	wantLines(t, out, "alerts", "none raised in the last day", "no destination is set here")

	ctx := context.Background()
	c, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	now := time.Now()
	for i, st := range []string{"sent", "new", "new", "stale"} {
		if _, err := c.Exec(ctx, `INSERT INTO cloudtrail_alerts (id, rule_id, title, event_id, event_time, status, settled_at)
            VALUES (gen_random_uuid(), 'r', 't', $1, $2, $3, CASE WHEN $3 IN ('sent', 'stale') THEN now() END)`,
			"e"+string(rune('0'+i)), now, st); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Exec(ctx, `INSERT INTO cloudtrail_alert_deliveries (message_id, destination, attempts, last_attempt, last_error)
        SELECT id, 'webhook', 3, now(), 'webhook: 503 Service Unavailable' FROM cloudtrail_alerts WHERE status = 'new'`); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCommand(t, t.Context(), map[string]string{"DATABASE_URL": db,
		"PGTRAIL_ALERT_WEBHOOK_URL": "https://hooks.example.com/pgtrail", "PGTRAIL_ALERT_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	wantLines(t, out, "alerts", "4 raised in the last day: 1 sent, 2 new, 1 stale", "2 waiting for delivery",
		"→ webhook", "0 delivered in the last day, 2 failing", "503 Service Unavailable")
}
