package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AlertStatus is what ReadStatus reads of the alerts.
type AlertStatus struct {
	// Day counts the alerts raised in the last day, by status.
	Day map[string]int64
	// Waiting counts the alerts not settled; Oldest is when the oldest of
	// them was raised.
	Waiting int64
	Oldest  time.Time
	// Destinations are the last day's attempts, per destination.
	Destinations []DestinationStatus
}

// DestinationStatus is one destination's last day: the messages delivered
// and those still failing, with the latest error.
type DestinationStatus struct {
	Name               string
	Delivered, Failing int64
	LastError          string
	LastErrorAt        time.Time
}

// queryAlerts reads the alerts, if the schema has them.
func (st *Status) queryAlerts(ctx context.Context, conn *pgx.Conn) error {
	if st.Schema < 9 {
		return nil
	}
	a := &AlertStatus{Day: map[string]int64{}}
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
		var d DestinationStatus
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
