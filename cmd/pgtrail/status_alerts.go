package main

import (
	"fmt"
	"strings"
	"time"
)

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
	switch {
	case cfg.alertsOff():
		row("", "PGTRAIL_RULES=off here: no alerts are raised")
	case !cfg.hasAlertDestination():
		row("", "no destination is set here (PGTRAIL_ALERT_*): alerts are stored and wait (docs/alerts.md)")
	}
}
