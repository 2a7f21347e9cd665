package sink

import "github.com/prometheus/client_golang/prometheus"

// poolCollector exports the pgx pool's statistics.
type poolCollector struct {
	pg                               *Postgres
	total, idle, acquired, max       *prometheus.Desc
	acquireCount, acquireWait, empty *prometheus.Desc
}

// NewPoolCollector returns a collector of pgtrail_db_pool_* metrics.
func NewPoolCollector(pg *Postgres) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("pgtrail_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		pg:           pg,
		total:        d("connections", "Open connections."),
		idle:         d("idle_connections", "Idle connections."),
		acquired:     d("acquired_connections", "Connections in use."),
		max:          d("max_connections", "Pool size limit."),
		acquireCount: d("acquires_total", "Connections acquired from the pool."),
		acquireWait:  d("acquire_wait_seconds_total", "Time spent waiting for a connection."),
		empty:        d("empty_acquires_total", "Acquires that had to wait or open a connection."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.max, c.acquireCount, c.acquireWait, c.empty} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pg.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.total, float64(s.TotalConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.max, float64(s.MaxConns()))
	k(c.acquireCount, float64(s.AcquireCount()))
	k(c.acquireWait, s.AcquireDuration().Seconds())
	k(c.empty, float64(s.EmptyAcquireCount()))
}
