package sink

import (
	"context"
	"fmt"
	"time"
)

// AlertsDeleted counts what retention deleted (or, in a dry run, would
// delete) of the alerts' tables.
type AlertsDeleted struct {
	// Alerts are settled alerts (sent, throttled or stale) whose event is
	// older than the cutoff.
	Alerts int64
	// Summaries are settled throttle summaries whose window ended by the
	// cutoff.
	Summaries int64
	// Deliveries are the delivery records of both.
	Deliveries int64
}

// DeleteAlertsBefore deletes the settled alerts whose events lie before
// cutoff (rounded down to midnight UTC), the settled summaries whose window
// ended by then, and their delivery records, through
// pgtrail_delete_alerts_before (migrations/0013), which refuses a cutoff
// past the retention floor. Alerts that still wait for delivery are kept,
// however old. With dryRun it deletes nothing and counts what it would.
func (p *Postgres) DeleteAlertsBefore(ctx context.Context, cutoff time.Time, dryRun bool) (AlertsDeleted, error) {
	var d AlertsDeleted
	err := p.pool.QueryRow(ctx, `SELECT alerts, summaries, deliveries
        FROM pgtrail_delete_alerts_before(date '1970-01-01' + $1::integer, $2)`, unixDay(cutoff), dryRun).
		Scan(&d.Alerts, &d.Summaries, &d.Deliveries)
	if err != nil {
		return AlertsDeleted{}, fmt.Errorf("retention: alerts: %w", classify(err))
	}
	return d, nil
}
