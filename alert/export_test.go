package alert

import dto "github.com/prometheus/client_model/go"

// TestMetrics exposes a relay's metrics to the tests.
type TestMetrics struct{ m *metrics }

func (r *Relay) Metrics() TestMetrics { return TestMetrics{r.m} }

func (t TestMetrics) Deliveries(dest, result string) float64 {
	var m dto.Metric
	_ = t.m.deliveries.WithLabelValues(dest, result).Write(&m)
	return m.GetCounter().GetValue()
}

func (t TestMetrics) Raised(level string) float64 {
	var m dto.Metric
	_ = t.m.raised.WithLabelValues(level).Write(&m)
	return m.GetCounter().GetValue()
}
