package alert_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// migrated opens a fresh, migrated database.
func migrated(t *testing.T) *sink.Postgres {
	t.Helper()
	pg, err := sink.Open(context.Background(), sink.Config{URL: pgtest.New(t), MaxConns: 6}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	if _, err := pg.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pg
}

// store inserts an alert of rule for a new event at time at, as the write
// path would, and returns its id.
func store(t *testing.T, pg *sink.Postgres, rule, eventID string, at time.Time) string {
	t.Helper()
	id := sink.AlertID(rule, eventID, at)
	_, err := pg.Pool().Exec(context.Background(), `INSERT INTO cloudtrail_alerts
        (id, rule_id, title, level, tags, author, event_id, event_time, event_source, event_name, account_id, principal_arn)
        VALUES ($1, $2, 'Rule '||$2, 'high', '{attack.t1562}', 'pgtrail', $3, $4, 'cloudtrail.amazonaws.com', 'StopLogging',
                '111122223333', 'arn:aws:iam::111122223333:user/mallory')`, id, rule, eventID, at)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func count(t *testing.T, pg *sink.Postgres, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pg.Pool().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// recorder is a destination that keeps what it was sent and fails while
// told to.
type recorder struct {
	name string
	mu   sync.Mutex
	got  []*alert.Message
	fail error
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Send(_ context.Context, m *alert.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.got = append(r.got, m)
	return nil
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

// ids counts the messages received by id.
func (r *recorder) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, m := range r.got {
		out[m.ID]++
	}
	return out
}

func fastConfig() alert.Config {
	return alert.Config{Poll: 20 * time.Millisecond, Batch: 10, Lease: 10 * time.Second, Timeout: time.Second,
		RetryBase: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond}
}

// drain runs relay.Once until it claims nothing, for at most d.
func drain(t *testing.T, r *alert.Relay, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, err := r.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func TestRelayDeliversOnceToEach(t *testing.T) {
	t.Parallel()
	pg := migrated(t)
	now := time.Now()
	var ids []string
	for i := range 25 {
		ids = append(ids, store(t, pg, "r1", fmt.Sprintf("e%d", i), now.Add(-time.Duration(i)*time.Second)))
	}
	a, b := &recorder{name: "sns"}, &recorder{name: "webhook"}
	reg := prometheus.NewRegistry()
	r := alert.NewRelay(fastConfig(), pg, []alert.Destination{a, b}, reg, zaptest.NewLogger(t))
	drain(t, r, 10*time.Second)
	for _, rec := range []*recorder{a, b} {
		got := rec.ids()
		if len(got) != 25 {
			t.Errorf("%s got %d alerts, want 25", rec.name, len(got))
		}
		for _, id := range ids {
			if got[id] != 1 {
				t.Errorf("%s got alert %s %d times, want once", rec.name, id, got[id])
			}
		}
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_alerts WHERE status = 'sent' AND settled_at IS NOT NULL`); n != 25 {
		t.Errorf("%d alerts sent and settled, want 25", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_alert_deliveries WHERE delivered_at IS NOT NULL AND attempts = 1`); n != 50 {
		t.Errorf("%d deliveries recorded, want 50", n)
	}
	if v := r.Metrics().Deliveries("sns", "delivered"); v != 25 {
		t.Errorf("sns delivered metric %v, want 25", v)
	}
	if v := r.Metrics().Raised("high"); v != 25 {
		t.Errorf("raised metric %v, want 25", v)
	}
}

// TestRelayOutage: a destination that fails delays its alerts and never
// loses them; the one that works is not sent them twice.
func TestRelayOutage(t *testing.T) {
	t.Parallel()
	pg := migrated(t)
	now := time.Now()
	for i := range 5 {
		store(t, pg, "r1", fmt.Sprintf("e%d", i), now)
	}
	ok, down := &recorder{name: "sns"}, &recorder{name: "webhook"}
	down.setFail(errors.New("503 Service Unavailable"))
	r := alert.NewRelay(fastConfig(), pg, []alert.Destination{ok, down}, nil, zaptest.NewLogger(t))
	ctx := context.Background()
	for range 5 {
		if _, err := r.Once(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_alerts WHERE settled_at IS NULL AND status = 'sending'`); n != 5 {
		t.Fatalf("%d alerts waiting during the outage, want 5", n)
	}
	// The webhook is tried again and again, once a batch: the batch's
	// other alerts wait without an attempt recorded. Which alert is tried
	// first in each batch depends on the jittered backoffs, so the tries
	// are counted over all of them.
	if n := count(t, pg, `SELECT sum(attempts) FROM cloudtrail_alert_deliveries WHERE destination = 'webhook'`); n < 3 {
		t.Errorf("webhook tried %d times over five batches, want several", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_alert_deliveries WHERE destination = 'webhook' AND last_error IS NULL`); n != 0 {
		t.Errorf("%d webhook deliveries without the error recorded", n)
	}
	backlog, err := pg.AlertBacklog(ctx, []string{"sns", "webhook"})
	if err != nil || backlog.Waiting["webhook"] != 5 || backlog.Waiting["sns"] != 0 || backlog.Oldest.IsZero() {
		t.Errorf("backlog %+v, %v; want 5 waiting for the webhook, none for sns", backlog, err)
	}

	down.setFail(nil)
	deadline := time.Now().Add(10 * time.Second)
	for count(t, pg, `SELECT count(*) FROM cloudtrail_alerts WHERE settled_at IS NULL`) > 0 && time.Now().Before(deadline) {
		if _, err := r.Once(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, rec := range []*recorder{ok, down} {
		got := rec.ids()
		if len(got) != 5 {
			t.Errorf("%s got %d alerts, want 5", rec.name, len(got))
		}
		for id, n := range got {
			if n != 1 {
				t.Errorf("%s got %s %d times, want once", rec.name, id, n)
			}
		}
	}
}

// TestRelayThrottleAndSummary: past the throttle, a rule's alerts are held
// back and told in one summary once the window closes.
func TestRelayThrottleAndSummary(t *testing.T) {
	t.Parallel()
	pg := migrated(t)
	now := time.Now()
	for i := range 30 {
		store(t, pg, "noisy", fmt.Sprintf("n%d", i), now.Add(time.Duration(i)*time.Millisecond))
	}
	for i := range 2 {
		store(t, pg, "quiet", fmt.Sprintf("q%d", i), now)
	}
	dest := &recorder{name: "webhook"}
	cfg := fastConfig()
	cfg.Throttle, cfg.Window = 4, 2*time.Second
	r := alert.NewRelay(cfg, pg, []alert.Destination{dest}, nil, zaptest.NewLogger(t))
	drain(t, r, 5*time.Second)
	alerts, summaries := 0, 0
	var summary *alert.Message
	deadline := time.Now().Add(10 * time.Second)
	for summary == nil && time.Now().Before(deadline) {
		if _, err := r.Once(context.Background()); err != nil {
			t.Fatal(err)
		}
		dest.mu.Lock()
		alerts, summaries = 0, 0
		for _, m := range dest.got {
			if m.Summary != nil {
				summaries++
				summary = m
			} else {
				alerts++
			}
		}
		dest.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	// The noisy rule's 30 may straddle two windows: 4 each at most.
	if alerts < 6 || alerts > 10 {
		t.Errorf("%d alerts sent one by one, want the quiet rule's 2 and 4 or 8 of the noisy one's", alerts)
	}
	if summary == nil {
		t.Fatal("no summary")
	}
	if s := summary.Summary; s.RuleID != "noisy" || s.Sent+s.Suppressed > 30 || s.Suppressed < 18 {
		t.Errorf("summary %+v", s)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_alerts WHERE status = 'throttled'`); n != 32-alerts {
		t.Errorf("%d alerts throttled, want %d", n, 32-alerts)
	}
	if summaries != 1 && count(t, pg, `SELECT count(*) FROM cloudtrail_alert_summaries WHERE suppressed > 0`) != summaries {
		t.Errorf("%d summaries delivered", summaries)
	}
	if !containsAll(summary.Text(), "noisy", "held back") {
		t.Errorf("summary text %q", summary.Text())
	}
}

// TestRelayMaxAge: alerts for old events are stored, and settled unsent.
func TestRelayMaxAge(t *testing.T) {
	t.Parallel()
	pg := migrated(t)
	store(t, pg, "r1", "old", time.Now().Add(-48*time.Hour))
	fresh := store(t, pg, "r1", "new", time.Now().Add(-time.Hour))
	dest := &recorder{name: "sns"}
	cfg := fastConfig()
	cfg.MaxAge = 24 * time.Hour
	r := alert.NewRelay(cfg, pg, []alert.Destination{dest}, nil, zaptest.NewLogger(t))
	drain(t, r, 5*time.Second)
	if got := dest.ids(); len(got) != 1 || got[fresh] != 1 {
		t.Errorf("sent %v, want only the fresh alert", got)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_alerts WHERE status = 'stale' AND event_id = 'old' AND settled_at IS NOT NULL`); n != 1 {
		t.Errorf("old alert not settled as stale")
	}
}

// TestRelaysShareTheWork: relays that run at once deliver each alert once.
func TestRelaysShareTheWork(t *testing.T) {
	t.Parallel()
	pg := migrated(t)
	now := time.Now()
	for i := range 60 {
		store(t, pg, fmt.Sprintf("r%d", i%3), fmt.Sprintf("e%d", i), now)
	}
	dest := &recorder{name: "webhook"}
	var wg sync.WaitGroup
	for range 3 {
		r := alert.NewRelay(fastConfig(), pg, []alert.Destination{dest}, nil, zaptest.NewLogger(t))
		wg.Go(func() { drain(t, r, 10*time.Second) })
	}
	wg.Wait()
	got := dest.ids()
	if len(got) != 60 {
		t.Errorf("%d alerts delivered, want 60", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("alert %s delivered %d times", id, n)
		}
	}
}

// TestRelayLeaseAfterCrash: alerts claimed by a relay that died are
// claimed again once the lease runs out, and delivered.
func TestRelayLeaseAfterCrash(t *testing.T) {
	t.Parallel()
	pg := migrated(t)
	id := store(t, pg, "r1", "e1", time.Now())
	ctx := context.Background()
	// A relay claims and dies before it records anything.
	claimed, _, err := pg.ClaimAlerts(ctx, sink.ClaimOptions{Limit: 10, Lease: 300 * time.Millisecond, Destinations: []string{"sns"}})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %v, %v", claimed, err)
	}
	dest := &recorder{name: "sns"}
	r := alert.NewRelay(fastConfig(), pg, []alert.Destination{dest}, nil, zaptest.NewLogger(t))
	if n, _ := r.Once(ctx); n != 0 {
		t.Fatalf("claimed %d alerts under another's lease", n)
	}
	time.Sleep(400 * time.Millisecond)
	drain(t, r, 5*time.Second)
	if got := dest.ids(); got[id] != 1 {
		t.Errorf("after the lease: %v", got)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
