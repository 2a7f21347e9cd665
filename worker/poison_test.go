package worker_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgtrail/pgtrail/worker"
)

// TestPoisonLoggedOnce: a message refused for good comes back until the
// redrive policy moves it to the dead-letter queue; its reason is logged at
// error level on its first receive only, and at debug level on the others.
func TestPoisonLoggedOnce(t *testing.T) {
	t.Parallel()
	q := &memQueue{}
	q.send(`{"hello":"this is not a notification"}`)
	q.send(`{"s3Bucket":"elsewhere","s3ObjectKey":["AWSLogs/111122223333/CloudTrail/eu-west-1/2024/03/01/f.json.gz"]}`)
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := worker.Config{QueueURL: "memory", WaitTime: time.Second, VisibilityTimeout: 30 * time.Second,
		Allow: worker.AllowList{Buckets: []string{"trail"}}}
	proc := worker.NewProcessor(cfg, nil, sinkFunc((&countingSink{}).write), nil, nil, zap.New(core))
	w := worker.New(cfg, q, proc, nil, zap.New(core))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	// Released at once, each comes back at the next receive.
	waitFor(t, "five receives of each", func() bool { return q.receivedCount("m1") >= 5 && q.receivedCount("m2") >= 5 })
	cancel()
	<-done

	for _, msg := range []string{
		"unrecognized message left for the dead-letter queue", // m1
		"object refused",                         // m2, by the processor
		"message left for the dead-letter queue", // m2
	} {
		lines := logs.FilterMessage(msg)
		if n := lines.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 1 {
			t.Errorf("%q logged %d times at error level over five receives; want once", msg, n)
		}
		if n := lines.FilterLevelExact(zapcore.DebugLevel).Len(); n < 4 {
			t.Errorf("%q logged %d times at debug level; want the later receives there", msg, n)
		}
	}
	for _, e := range logs.FilterMessage("unrecognized message left for the dead-letter queue").FilterLevelExact(zapcore.DebugLevel).All() {
		if e.ContextMap()["receive_count"] == nil {
			t.Errorf("a later receive's line does not say which: %v", e.ContextMap())
		}
	}
}
