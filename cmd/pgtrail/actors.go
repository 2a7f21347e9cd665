package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/oklog/run"
)

// httpShutdownTimeout bounds the HTTP server's graceful shutdown, the last
// step of a stop.
const httpShutdownTimeout = 5 * time.Second

// daemon is what pgtrail run runs: one actor group. The first actor to
// return, with an error or not, stops them all, in this order, each one
// stopped and waited for before the next is told:
//
//  1. the consumer: it stops receiving, and the messages in flight finish
//     within PGTRAIL_SHUTDOWN_GRACE;
//  2. retention;
//  3. the alert relay (and next, the LookupEvents API server), between
//     retention and HTTP: they may want the consumer's last writes, and
//     /readyz and /metrics should outlive them;
//  4. the HTTP server, last, so that /healthz, /readyz and /metrics answer
//     while the consumer drains.
//
// The caller closes the database pool after run returns, so after every
// actor has stopped.
type daemon struct {
	// consume is the consumer (worker.Worker.Run). It returns when ctx
	// ends (SIGTERM, SIGINT) or, with -drain, once the queue is empty.
	consume func(ctx context.Context) error
	// retention applies PGTRAIL_RETENTION_DAYS, when set, and compacts
	// the activity rows (sink.Postgres.CompactActivity) until ctx ends;
	// nil runs neither.
	retention func(ctx context.Context)
	// relay delivers the stored alerts until ctx ends; nil without an
	// alert destination.
	relay func(ctx context.Context) error
	// http serves on ln; nil without PGTRAIL_HTTP_ADDR.
	http *http.Server
	ln   net.Listener
}

// run runs the actors until ctx ends or one of them returns, stops them in
// order and returns the error of the first one to return.
//
// oklog/run rather than an errgroup: an errgroup stops the others only on
// an error, while here a consumer that returns nil (-drain, a finished
// drain after SIGTERM) ends the run too; and run.Group calls the interrupt
// functions one after the other in the order the actors were added, so an
// interrupt that waits for its actor to return makes that order the stop
// order.
func (d *daemon) run(ctx context.Context) error {
	var g run.Group

	// 1. The consumer watches ctx itself: SIGTERM stops its receiving at
	// once, whichever actor the group hears from first.
	consumeCtx, stopConsuming := context.WithCancel(ctx)
	consumed := make(chan struct{})
	g.Add(func() error {
		defer close(consumed)
		return d.consume(consumeCtx)
	}, func(error) {
		stopConsuming()
		<-consumed
	})

	// 2. Retention and compaction. Their work, like the consumer's receiving,
	// stops at SIGTERM (a partition drop is not worth holding the drain
	// for); the actor itself returns only when the group stops it, so
	// that the consumer's result is the run's.
	if d.retention != nil {
		retentionCtx, stopRetention := context.WithCancel(ctx)
		interrupted, retained := make(chan struct{}), make(chan struct{})
		g.Add(func() error {
			defer close(retained)
			d.retention(retentionCtx)
			<-interrupted
			return nil
		}, func(error) {
			stopRetention()
			close(interrupted)
			<-retained
		})
	}

	// 3. The LookupEvents API server goes here, and the alert relay. The
	// relay goes on while the consumer drains, to deliver what its last
	// writes raised; an alert it has not delivered when it stops waits in
	// the database for another worker's relay, or this one's next start.
	if d.relay != nil {
		relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
		relayed := make(chan struct{})
		g.Add(func() error {
			defer close(relayed)
			return d.relay(relayCtx)
		}, func(error) {
			stopRelay()
			<-relayed
		})
	}

	// 4. HTTP, last.
	if d.http != nil {
		g.Add(func() error {
			if err := d.http.Serve(d.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: serve on %s: %w", d.ln.Addr(), err)
			}
			return nil
		}, func(error) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpShutdownTimeout)
			defer cancel()
			_ = d.http.Shutdown(ctx)
		})
	}

	return g.Run()
}
