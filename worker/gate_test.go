package worker_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// errRefused is what a database that is away answers.
var errRefused = errors.New("postgres: begin: dial tcp 127.0.0.1:5432: connect: connection refused")

// pingFunc is a worker.Pinger.
type pingFunc func(ctx context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

// outage is a database that can be taken away: its pings and writes fail
// while down is set.
type outage struct {
	down  atomic.Bool
	pings atomic.Int64
	sink  countingSink
}

func (o *outage) Ping(context.Context) error {
	o.pings.Add(1)
	if o.down.Load() {
		return errRefused
	}
	return nil
}

func (o *outage) write(ctx context.Context, objs []*sink.StreamedObject) ([]sink.WriteResult, error) {
	if o.down.Load() {
		return nil, errRefused
	}
	return o.sink.write(ctx, objs)
}

func (o *outage) events() int {
	o.sink.mu.Lock()
	defer o.sink.mu.Unlock()
	return o.sink.events
}

// outageWorld is a worker on a memQueue whose objects are each a small
// trail file and whose database is an outage. The first GetObject waits
// until proceed is closed.
type outageWorld struct {
	db      *outage
	q       *memQueue
	w       *worker.Worker
	reg     *prometheus.Registry
	logs    *observer.ObservedLogs
	fetched chan struct{}
	proceed chan struct{}
	stop    func() time.Duration // stops the worker and says how long Run took to return
}

const outageNotification = `{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/111122223333/CloudTrail/eu-west-1/2024/03/01/f.json.gz"]}`

func newOutageWorld(t *testing.T, pinger worker.Pinger, db *outage) *outageWorld {
	t.Helper()
	o := &outageWorld{db: db, q: &memQueue{}, reg: prometheus.NewRegistry(),
		fetched: make(chan struct{}), proceed: make(chan struct{})}
	body := trailFile("outage", 10)
	var once sync.Once
	fake := &fakeS3{getObject: func(ctx context.Context, _ *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
		once.Do(func() { close(o.fetched) })
		select {
		case <-o.proceed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(body)), ContentLength: aws.Int64(int64(len(body)))}, nil
	}}
	core, logs := observer.New(zapcore.DebugLevel)
	o.logs = logs
	log := zap.New(core)
	m := worker.NewMetrics(o.reg)
	cfg := worker.Config{
		QueueURL: "memory", Pollers: 2, WaitTime: time.Second,
		VisibilityTimeout: 2 * time.Second, ShutdownGrace: 10 * time.Second,
		Backoff: retry.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 3},
	}
	cfg.Gate = worker.NewGate(pinger, retry.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}, m, log)
	proc := worker.NewProcessor(cfg, fake, cfg.Gate.Sink(sinkFunc(db.write)), nil, m, log)
	o.w = worker.New(cfg, o.q, proc, m, log)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := o.w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
		close(done)
	}()
	var once2 sync.Once
	var took time.Duration
	o.stop = func() time.Duration {
		once2.Do(func() {
			start := time.Now()
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Error("Run did not return within 30s of its context's end")
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() { o.stop() })
	return o
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logged reports whether a line with msg was logged.
func (o *outageWorld) logged(msg string) bool { return o.logs.FilterMessage(msg).Len() > 0 }

// TestOutageHoldsMessages takes the database away while a message is being
// processed: the pollers must stop receiving and the message must be held
// invisible (its visibility extended, never released or left to expire),
// for longer than its visibility timeout, and be processed within the same
// receive once the database is back.
func TestOutageHoldsMessages(t *testing.T) {
	t.Parallel()
	db := &outage{}
	o := newOutageWorld(t, db, db)
	o.q.send(outageNotification)
	<-o.fetched
	db.down.Store(true)
	close(o.proceed)
	waitFor(t, "message held", func() bool { return o.logged("database unreachable; holding the message until it answers") })

	if err := o.w.Ready(); err == nil || err.Error() != "database unreachable; pollers paused" {
		t.Errorf("Ready during the outage = %v; want database unreachable; pollers paused", err)
	}
	if v := gaugeValue(t, o.reg, "pgtrail_pollers_paused"); v != 1 {
		t.Errorf("pgtrail_pollers_paused = %v during the outage, want 1", v)
	}
	time.Sleep(200 * time.Millisecond) // a receive under way ends
	before, _, _, _ := o.q.stats()
	time.Sleep(3 * time.Second) // more than the 2s visibility timeout
	receives, releases, extends, deleted := o.q.stats()
	if receives != before {
		t.Errorf("%d receives during the outage; want none", receives-before)
	}
	if releases != 0 || deleted != 0 || extends == 0 {
		t.Errorf("during the outage: %d releases, %d deletes, %d extensions; want the message held: 0, 0, some", releases, deleted, extends)
	}

	db.down.Store(false)
	waitFor(t, "delete after the outage", func() bool { _, _, _, d := o.q.stats(); return d == 1 })
	if n := o.q.receivedCount("m1"); n != 1 {
		t.Errorf("the message was received %d times; want once", n)
	}
	if got := db.events(); got != 10 {
		t.Errorf("%d events written, want 10", got)
	}
	if err := o.w.Ready(); err != nil {
		t.Errorf("Ready after the outage = %v", err)
	}
	if v := gaugeValue(t, o.reg, "pgtrail_pollers_paused"); v != 0 {
		t.Errorf("pgtrail_pollers_paused = %v after the outage, want 0", v)
	}
	waitFor(t, "receive after the outage", func() bool { r, _, _, _ := o.q.stats(); return r > receives })
	for _, msg := range []string{"database unreachable; pausing pollers and holding messages until it answers", "database answers again; resuming"} {
		if n := o.logs.FilterMessage(msg).Len(); n != 1 {
			t.Errorf("%q logged %d times, want once", msg, n)
		}
	}
	if n := o.logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 0 {
		t.Errorf("%d errors logged for an outage that lost nothing: %v", n, o.logs.FilterLevelExact(zapcore.ErrorLevel).All())
	}
}

// TestOutageAtStart: a worker whose database is down when it starts
// receives nothing until the database answers.
func TestOutageAtStart(t *testing.T) {
	t.Parallel()
	db := &outage{}
	db.down.Store(true)
	o := newOutageWorld(t, db, db)
	close(o.proceed)
	o.q.send(outageNotification)
	waitFor(t, "pause", func() bool { return o.w.Ready() != nil })
	time.Sleep(500 * time.Millisecond)
	if r, _, _, _ := o.q.stats(); r != 0 {
		t.Errorf("%d receives with the database down from the start; want none", r)
	}
	db.down.Store(false)
	waitFor(t, "delete once the database answers", func() bool { _, _, _, d := o.q.stats(); return d == 1 })
}

// TestOutageShutdownReleases: a worker asked to stop while it holds a
// message for the database hands it back at once, without waiting out its
// shutdown grace, and only once: after its pollers have returned, so that
// a receive of its own still under way cannot take the message again (it
// did, about one run in five under load, when the release came as soon as
// the context ended).
func TestOutageShutdownReleases(t *testing.T) {
	t.Parallel()
	db := &outage{}
	o := newOutageWorld(t, db, db)
	o.q.send(outageNotification)
	<-o.fetched
	db.down.Store(true)
	close(o.proceed)
	waitFor(t, "message held", func() bool { return o.logged("database unreachable; holding the message until it answers") })
	if took := o.stop(); took > 2*time.Second {
		t.Errorf("Run took %s to return with a message held; want it released at once, not after the 10s grace", took)
	}
	if _, releases, _, _ := o.q.stats(); releases != 1 {
		t.Errorf("%d releases at shutdown; want the held message released", releases)
		for _, e := range o.logs.All() {
			t.Logf("worker log: %s %s %v", e.Time.Format("15:04:05.000000"), e.Message, e.ContextMap())
		}
	}
}

// TestWriteFailureElsewhereIsNotHeld: when writes fail but the database
// answers its pings, the failure is not an outage: the pollers go on and
// the message is left for redelivery as before.
func TestWriteFailureElsewhereIsNotHeld(t *testing.T) {
	t.Parallel()
	db := &outage{}
	db.down.Store(true) // writes fail...
	var pings atomic.Int64
	o := newOutageWorld(t, pingFunc(func(context.Context) error { pings.Add(1); return nil }), db) // ...pings do not
	close(o.proceed)
	o.q.send(outageNotification)
	waitFor(t, "message left for redelivery", func() bool { return o.logged("message left for redelivery") })
	if o.logged("database unreachable; holding the message until it answers") || o.w.Ready() != nil {
		t.Error("a write failure with the database answering paused the worker")
	}
	if pings.Load() == 0 {
		t.Error("the failed write was not checked with a ping")
	}
}

// TestGateSharesPings: callers waiting for a database that is down share
// the pings, which back off.
func TestGateSharesPings(t *testing.T) {
	t.Parallel()
	db := &outage{}
	db.down.Store(true)
	g := worker.NewGate(db, retry.Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}, nil, zap.NewNop())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := g.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Wait with the database down = %v, want the context's deadline", err)
			}
		})
	}
	wg.Wait()
	// Backing off from 20 ms to 100 ms makes about 15 pings in a second;
	// each caller pinging on its own would make hundreds.
	if n := db.pings.Load(); n < 5 || n > 30 {
		t.Errorf("%d pings in 1s by 20 waiters; want about 15", n)
	}
	if !g.Down() {
		t.Error("Down() = false with the database down")
	}
	db.down.Store(false)
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	if err := g.Wait(ctx2); err != nil || g.Down() {
		t.Errorf("Wait once the database answers = %v, Down() = %v", err, g.Down())
	}
}

// gaugeValue returns the value of the unlabelled gauge name in reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
