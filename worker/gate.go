package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
)

// Pinger is what the worker needs to know whether its database can take
// writes: *sink.Postgres is one.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Gate keeps a worker that cannot write from taking work. While the
// database does not answer, the pollers receive nothing and the messages
// in hand are held invisible instead of being left to come back: an
// outage then costs delay, not receives counted towards the dead-letter
// queue. It learns of an outage from a write that fails for a reason that
// is not permanent (see Sink), confirmed by a ping; it then pings the
// database, with capped exponential backoff and jitter, until it answers.
// The pings while the database is down are made by the callers of Wait (a
// paused poller, a held message), so that the gate runs no loop of its
// own: only the ping a failed write asks for runs in a goroutine, for the
// ping's length. A Gate is safe for concurrent use.
type Gate struct {
	db      Pinger
	backoff retry.Backoff
	log     *zap.Logger
	metrics *Metrics

	mu      sync.Mutex
	state   gateState
	since   time.Time     // when the database was found down
	failed  int           // failed pings in a row
	next    time.Time     // the earliest next ping while down
	pinging bool          // a ping is under way
	pinged  time.Time     // when the latest ping started
	changed chan struct{} // closed, and replaced, when a ping ends
}

type gateState int

const (
	gateUnknown gateState = iota // not pinged yet: the first Wait pings
	gateUp
	gateDown
)

// DefaultProbeBackoff paces the pings while the database is down: from
// half a second, doubling, to ten seconds.
var DefaultProbeBackoff = retry.Backoff{Base: 500 * time.Millisecond, Max: 10 * time.Second}

// pingTimeout bounds one ping.
const pingTimeout = 5 * time.Second

// minSuspectInterval spaces out the pings that failed writes ask for while
// the database answers them: writes may fail for other reasons.
const minSuspectInterval = time.Second

// NewGate returns a Gate that pings db. b paces the pings while the
// database is down; its zero value means DefaultProbeBackoff.
func NewGate(db Pinger, b retry.Backoff, m *Metrics, log *zap.Logger) *Gate {
	if b.Base <= 0 || b.Max <= 0 {
		b = DefaultProbeBackoff
	}
	return &Gate{db: db, backoff: b, log: log, metrics: m, changed: make(chan struct{})}
}

// Down reports whether the latest ping failed: the database is unreachable
// and the pollers are paused.
func (g *Gate) Down() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state == gateDown
}

// up reports whether the latest ping succeeded.
func (g *Gate) up() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state == gateUp
}

// Wait returns nil once the database answers, at once when it answered the
// latest ping, or ctx's error when ctx ends first. While the database is
// down, a caller whose turn it is pings it; the others wait for the answer.
func (g *Gate) Wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		if g.state == gateUp {
			g.mu.Unlock()
			return nil
		}
		if !g.pinging && !time.Now().Before(g.next) {
			g.mu.Unlock()
			g.ping(ctx)
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		changed, pinging, wait := g.changed, g.pinging, time.Until(g.next)
		g.mu.Unlock()

		var timer *time.Timer
		var expired <-chan time.Time
		if !pinging {
			timer = time.NewTimer(wait)
			expired = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// check reports whether the database is down, pinging it first unless the
// answer is already known to be down or a ping is under way, whose answer
// it waits for. A handler asks before it holds a message whose write
// failed.
func (g *Gate) check(ctx context.Context) bool {
	g.mu.Lock()
	switch {
	case g.state == gateDown:
		g.mu.Unlock()
		return true
	case g.pinging:
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		}
	default:
		g.mu.Unlock()
		g.ping(ctx)
	}
	return g.Down()
}

// suspect is told of a write that failed for a reason that was not
// permanent: it pings the database, in the background, to learn whether it
// is down. The goroutine lives for one ping at most.
func (g *Gate) suspect() {
	g.mu.Lock()
	if g.state == gateDown || g.pinging || time.Since(g.pinged) < minSuspectInterval {
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	go g.ping(context.Background())
}

// ping pings the database once, unless another ping is under way, and
// records the answer. A ping cut short because ctx ended says nothing of
// the database and is not recorded.
func (g *Gate) ping(ctx context.Context) {
	g.mu.Lock()
	if g.pinging {
		g.mu.Unlock()
		return
	}
	g.pinging, g.pinged = true, time.Now()
	g.mu.Unlock()

	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	err := g.db.Ping(pctx)
	cancel()

	g.mu.Lock()
	defer g.mu.Unlock()
	g.pinging = false
	close(g.changed)
	g.changed = make(chan struct{})
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		if g.state == gateDown {
			g.log.Info("database answers again; resuming", zap.Duration("down", time.Since(g.since).Round(time.Millisecond)))
		}
		g.state, g.failed, g.next = gateUp, 0, time.Time{}
		g.metrics.paused(false)
		return
	}
	g.failed++
	g.next = time.Now().Add(g.backoff.Delay(g.failed))
	if g.state != gateDown {
		g.state, g.since = gateDown, time.Now()
		g.metrics.paused(true)
		g.log.Warn("database unreachable; pausing pollers and holding messages until it answers", zap.Error(err))
		return
	}
	g.log.Debug("database still unreachable", zap.Int("pings", g.failed), zap.Error(err))
}

// Sink returns s, with every write that fails for a reason that is not
// permanent reported to the gate.
func (g *Gate) Sink(s Sink) Sink { return gatedSink{s, g} }

type gatedSink struct {
	Sink
	gate *Gate
}

func (s gatedSink) WriteBuffered(ctx context.Context, objs []*sink.BufferedObject) ([]sink.WriteResult, error) {
	res, err := s.Sink.WriteBuffered(ctx, objs)
	s.check(ctx, err)
	return res, err
}

func (s gatedSink) WriteStreamed(ctx context.Context, obj *sink.StreamedObject) (sink.WriteResult, error) {
	res, err := s.Sink.WriteStreamed(ctx, obj)
	s.check(ctx, err)
	return res, err
}

// check reports err to the gate unless it is permanent or the write was
// cancelled.
func (s gatedSink) check(ctx context.Context, err error) {
	if err != nil && !retry.IsPermanent(err) && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		s.gate.suspect()
	}
}
