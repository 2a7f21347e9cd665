package alert

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	raised     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	stale      prometheus.Counter
	throttled  prometheus.Counter
	waiting    *prometheus.GaugeVec
	oldest     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, destinations []string) *metrics {
	m := &metrics{
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgtrail_alerts_raised_total",
			Help: "Alerts stored by the write path, counted by the relay that first claimed them, by level.",
		}, []string{"level"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgtrail_alert_deliveries_total",
			Help: "Deliveries of alerts and summaries, by destination and result (delivered, failed).",
		}, []string{"destination", "result"}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgtrail_alerts_stale_total",
			Help: "Alerts stored but not sent: their events were older than PGTRAIL_ALERT_MAX_AGE.",
		}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgtrail_alerts_throttled_total",
			Help: "Alerts held back by their rule's throttle, to be told in its summary.",
		}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pgtrail_alerts_waiting",
			Help: "Alerts not yet delivered to the destination, fleet-wide.",
		}, []string{"destination"}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgtrail_alert_oldest_undelivered_seconds",
			Help: "Age of the oldest alert that waits for delivery, fleet-wide; 0 when none waits.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.raised, m.deliveries, m.stale, m.throttled, m.waiting, m.oldest)
	}
	for _, d := range destinations {
		m.deliveries.WithLabelValues(d, "delivered")
		m.deliveries.WithLabelValues(d, "failed")
		m.waiting.WithLabelValues(d)
	}
	return m
}
