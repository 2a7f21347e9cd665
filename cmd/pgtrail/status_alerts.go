package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// alertStatus is what status shows of the alerts (migration 9 on).
type alertStatus struct {
	// Day counts the alerts raised in the last day by status.
	Day map[string]int64
	// Waiting are the alerts not settled; Oldest, when the oldest of them
	// was raised.
	Waiting int64
	Oldest  time.Time
	// Destinations, per destination over the last day's attempts: the
	// messages delivered and those still failing, with the latest error.
	Destinations []destinationStatus
}

type destinationStatus struct {
	Name               string
	Delivered, Failing int64
	LastError          string
	LastErrorAt        time.Time
}

// queryAlerts reads the alerts, if the schema has them.
func (st *dbStatus) queryAlerts(ctx context.Context, conn *pgx.Conn) error {
	if st.Schema < 9 {
		return nil
	}
	a := &alertStatus{Day: map[string]int64{}}
	rows, err := conn.Query(ctx, `SELECT status, count(*) FROM cloudtrail_alerts WHERE created > now() - interval '1 day' GROUP BY 1`)
	if err != nil {
		return fmt.Errorf("postgres: alerts: %w", err)
	}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: alerts: %w", err)
		}
		a.Day[s] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: alerts: %w", err)
	}
	var oldest *time.Time
	if err := conn.QueryRow(ctx, `SELECT count(*), min(created) FROM cloudtrail_alerts WHERE settled_at IS NULL`).Scan(&a.Waiting, &oldest); err != nil {
		return fmt.Errorf("postgres: alerts waiting: %w", err)
	}
	if oldest != nil {
		a.Oldest = *oldest
	}
	rows, err = conn.Query(ctx, `SELECT destination, count(*) FILTER (WHERE delivered_at IS NOT NULL),
        count(*) FILTER (WHERE delivered_at IS NULL),
        coalesce((array_agg(last_error ORDER BY last_attempt DESC) FILTER (WHERE last_error IS NOT NULL AND delivered_at IS NULL))[1], ''),
        max(last_attempt) FILTER (WHERE last_error IS NOT NULL AND delivered_at IS NULL)
        FROM cloudtrail_alert_deliveries WHERE last_attempt > now() - interval '1 day' GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("postgres: alert deliveries: %w", err)
	}
	for rows.Next() {
		var d destinationStatus
		var at *time.Time
		if err := rows.Scan(&d.Name, &d.Delivered, &d.Failing, &d.LastError, &at); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: alert deliveries: %w", err)
		}
		if at != nil {
			d.LastErrorAt = *at
		}
		a.Destinations = append(a.Destinations, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: alert deliveries: %w", err)
	}
	st.Alerts = a
	return nil
}

// printAlerts writes the alerts' lines of the status screen.
func (st *status) printAlerts(row func(label, format string, args ...any), cfg *Config) {
	a := st.DB.Alerts
	if a == nil {
		return
	}
	var parts []string
	var total int64
	for _, s := range []string{"sent", "sending", "new", "throttled", "stale"} {
		if n := a.Day[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
			total += n
		}
	}
	if total == 0 {
		row("  alerts", "none raised in the last day")
	} else {
		row("  alerts", "%d raised in the last day: %s", total, strings.Join(parts, ", "))
	}
	if a.Waiting > 0 {
		row("", "%d waiting for delivery, the oldest raised %s ago", a.Waiting, st.Now.Sub(a.Oldest).Round(time.Second))
	}
	for _, d := range a.Destinations {
		line := fmt.Sprintf("%d delivered in the last day", d.Delivered)
		if d.Failing > 0 {
			line += fmt.Sprintf(", %d failing (latest at %s: %s)", d.Failing, d.LastErrorAt.UTC().Format(time.RFC3339), d.LastError)
		}
		row("  → "+d.Name, "%s", line)
	}
	if cfg.alertsOff() {
		row("", "PGTRAIL_RULES=off here: no alerts are raised")
	} else if !cfg.hasAlertDestination() {
		row("", "no destination is set here (PGTRAIL_ALERT_*): alerts are stored and wait (docs/alerts.md)")
	}
}
