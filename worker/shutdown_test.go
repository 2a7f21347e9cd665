package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/worker"
)

// TestNoShutdownGrace: with a negative ShutdownGrace (PGTRAIL_SHUTDOWN_GRACE
// =0s), a stop releases the messages in flight at once instead of waiting
// for them for the default 30 s.
func TestNoShutdownGrace(t *testing.T) {
	t.Parallel()
	fetched := make(chan struct{})
	fake := &fakeS3{getObject: func(ctx context.Context, _ *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
		close(fetched)
		<-ctx.Done() // an object that takes longer than any grace
		return nil, ctx.Err()
	}}
	q := &memQueue{}
	q.send(outageNotification)
	cfg := worker.Config{QueueURL: "memory", WaitTime: time.Second, VisibilityTimeout: 30 * time.Second, ShutdownGrace: -1}
	log := zaptest.NewLogger(t)
	proc := worker.NewProcessor(cfg, fake, sinkFunc((&countingSink{}).write), nil, nil, log)
	w := worker.New(cfg, q, proc, nil, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	<-fetched
	stopped := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waits 10s after a stop with no shutdown grace")
	}
	if took := time.Since(stopped); took > 2*time.Second {
		t.Errorf("Run took %s to return with no shutdown grace", took)
	}
	if _, releases, _, _ := q.stats(); releases != 1 {
		t.Errorf("%d messages released; want the one in flight", releases)
	}
	if got := (worker.Config{ShutdownGrace: -1}).WithDefaults().ShutdownGrace; got >= 0 {
		t.Errorf("WithDefaults turned no grace into %s", got)
	}
}
