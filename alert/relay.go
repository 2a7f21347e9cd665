package alert

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/sink"
)

// Store is what the relay needs of the database (sink.Postgres).
type Store interface {
	ClaimAlerts(ctx context.Context, opt sink.ClaimOptions) ([]sink.Alert, sink.ClaimResult, error)
	ClaimSummaries(ctx context.Context, limit int, lease time.Duration, destinations []string) ([]sink.AlertSummary, error)
	FinishAlerts(ctx context.Context, outs []sink.Outcome) error
	AlertBacklog(ctx context.Context, destinations []string) (sink.AlertBacklog, error)
}

// Config is how a relay delivers.
type Config struct {
	// MaxAge: alerts for events older than this are stored, not sent
	// (PGTRAIL_ALERT_MAX_AGE); 0 sends them whatever their age.
	MaxAge time.Duration
	// Throttle alerts of one rule are sent one by one per Window
	// (PGTRAIL_ALERT_THROTTLE, PGTRAIL_ALERT_THROTTLE_WINDOW); the rest are
	// told in a summary when the window closes. 0 sends them all.
	Throttle int
	Window   time.Duration
	// Poll is how often the relay looks for alerts when it found none.
	Poll time.Duration
	// Batch is the most alerts claimed at once.
	Batch int
	// Lease is how long claimed alerts are this relay's; deliveries that
	// take longer are cut short and tried again.
	Lease time.Duration
	// Timeout bounds one delivery to one destination.
	Timeout time.Duration
	// Backoff is the pause before the next attempt of a failed delivery:
	// RetryBase doubled at each failure, capped at RetryMax, jittered.
	RetryBase, RetryMax time.Duration
}

// WithDefaults fills what c leaves zero.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Poll, 2*time.Second)
	def(&c.Lease, 30*time.Second)
	def(&c.Timeout, 10*time.Second)
	def(&c.RetryBase, 5*time.Second)
	def(&c.RetryMax, 10*time.Minute)
	if c.Batch <= 0 {
		c.Batch = 50
	}
	if c.Throttle > 0 && c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	return c
}

// Relay delivers stored alerts to destinations.
type Relay struct {
	cfg   Config
	store Store
	dests []Destination
	names []string
	m     *metrics
	log   *zap.Logger
}

// NewRelay returns a relay of store's alerts to dests; its metrics are
// registered with reg.
func NewRelay(cfg Config, store Store, dests []Destination, reg prometheus.Registerer, log *zap.Logger) *Relay {
	r := &Relay{cfg: cfg.WithDefaults(), store: store, dests: dests, log: log}
	for _, d := range dests {
		r.names = append(r.names, d.Name())
	}
	r.m = newMetrics(reg, r.names)
	return r
}

// Run delivers until ctx ends. A database error is logged and the relay
// goes on after a pause: alerts wait in the database meanwhile.
func (r *Relay) Run(ctx context.Context) error {
	r.log.Info("alert relay running", zap.Strings("destinations", r.names), zap.Duration("max_age", r.cfg.MaxAge),
		zap.Int("throttle", r.cfg.Throttle), zap.Duration("throttle_window", r.cfg.Window))
	var lastBacklog time.Time
	for {
		n, err := r.Once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.log.Warn("alert relay: database", zap.Error(err))
		}
		if time.Since(lastBacklog) >= r.cfg.Poll {
			r.backlog(ctx)
			lastBacklog = time.Now()
		}
		if n >= r.cfg.Batch && err == nil {
			continue // more may wait
		}
		t := time.NewTimer(r.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backlog updates the waiting gauges.
func (r *Relay) backlog(ctx context.Context) {
	b, err := r.store.AlertBacklog(ctx, r.names)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("alert relay: backlog", zap.Error(err))
		}
		return
	}
	for _, d := range r.names {
		r.m.waiting.WithLabelValues(d).Set(float64(b.Waiting[d]))
	}
	age := 0.0
	if !b.Oldest.IsZero() {
		age = max(0, time.Since(b.Oldest).Seconds())
	}
	r.m.oldest.Set(age)
}

// Once claims and delivers one batch of due summaries and alerts, and
// returns how many alerts it claimed.
func (r *Relay) Once(ctx context.Context) (int, error) {
	sums, err := r.store.ClaimSummaries(ctx, r.cfg.Batch, r.cfg.Lease, r.names)
	if err != nil {
		return 0, err
	}
	var msgs []*Message
	var done [][]string
	var attempts []int
	for i := range sums {
		s := &sums[i]
		msgs = append(msgs, &Message{ID: s.ID, Summary: s})
		done = append(done, s.Delivered)
		attempts = append(attempts, s.Attempts)
	}
	alerts, res, err := r.store.ClaimAlerts(ctx, sink.ClaimOptions{
		Limit: r.cfg.Batch, Lease: r.cfg.Lease, MaxAge: r.cfg.MaxAge,
		Throttle: r.cfg.Throttle, Window: r.cfg.Window, Destinations: r.names,
	})
	if err == nil {
		for lv, n := range res.Raised {
			r.m.raised.WithLabelValues(lv).Add(float64(n))
		}
		r.m.stale.Add(float64(res.Stale))
		r.m.throttled.Add(float64(res.Throttled))
		for i := range alerts {
			a := &alerts[i]
			msgs = append(msgs, &Message{ID: a.ID, Alert: a})
			done = append(done, a.Delivered)
			attempts = append(attempts, a.Attempts)
		}
	}
	// Summaries claimed are delivered whatever became of the alerts' claim.
	if ferr := r.deliver(ctx, msgs, done, attempts); ferr != nil && err == nil {
		err = ferr
	}
	return len(alerts), err
}

// deliver sends each message to the destinations it was not delivered to,
// and records the outcomes. A destination that fails is not tried again in
// this batch, nor once the batch's time is up: its other messages wait as
// long as the failed one, and since they were not tried, their attempts do
// not grow.
func (r *Relay) deliver(ctx context.Context, msgs []*Message, done [][]string, attempts []int) error {
	if len(msgs) == 0 {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, r.cfg.Lease/2)
	defer cancel()
	down := map[string]bool{}
	outs := make([]sink.Outcome, 0, len(msgs))
	for i, m := range msgs {
		out := sink.Outcome{ID: m.ID, Summary: m.Summary != nil, Settled: true}
		failed := false
		for _, d := range r.dests {
			name := d.Name()
			if slices.Contains(done[i], name) {
				continue
			}
			if down[name] || dctx.Err() != nil {
				out.Settled = false // not tried: no attempt to record
				continue
			}
			err := r.send(dctx, d, m)
			if err == nil {
				r.m.deliveries.WithLabelValues(name, "delivered").Inc()
				out.Attempts = append(out.Attempts, sink.Attempt{Destination: name})
				continue
			}
			out.Settled, failed, down[name] = false, true, true
			out.Attempts = append(out.Attempts, sink.Attempt{Destination: name, Err: err.Error()})
			r.m.deliveries.WithLabelValues(name, "failed").Inc()
			r.log.Warn("alert delivery failed; it will be tried again", zap.String("destination", name),
				zap.String("alert_id", m.ID), zap.String("rule_id", m.RuleID()), zap.Error(err))
		}
		if !out.Settled {
			n := max(attempts[i], 1)
			if failed {
				n = attempts[i] + 1
			}
			out.NextAttempt = time.Now().Add(r.delay(n))
		}
		outs = append(outs, out)
	}
	// The outcomes are recorded even as ctx ends: what was delivered must
	// not be sent again for want of a record.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer fcancel()
	return r.store.FinishAlerts(fctx, outs)
}

func (r *Relay) send(ctx context.Context, d Destination, m *Message) error {
	sctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	return d.Send(sctx, m)
}

// delay is the pause before attempt n+1 after n failures: RetryBase
// doubled n-1 times, capped at RetryMax, less up to half at random (so
// that relays do not retry in step).
func (r *Relay) delay(n int) time.Duration {
	d := r.cfg.RetryBase << min(max(n-1, 0), 30)
	if d <= 0 || d > r.cfg.RetryMax {
		d = r.cfg.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}
