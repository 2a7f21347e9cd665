package worker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgtrail/pgtrail/worker"
)

// countingSQS passes every call to the emulator's client and counts the
// DeleteMessageBatch calls and the messages they deleted. It gives the
// first delivery of the first message received an invalid receipt handle.
type countingSQS struct {
	worker.SQS
	calls, deleted atomic.Int64

	mu      sync.Mutex
	spoiled string // the ID of that message
}

func (c *countingSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := c.SQS.ReceiveMessage(ctx, in, opts...)
	if err != nil || len(out.Messages) == 0 {
		return out, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spoiled == "" {
		m := &out.Messages[0]
		c.spoiled = aws.ToString(m.MessageId)
		m.ReceiptHandle = aws.String("invalid-" + aws.ToString(m.ReceiptHandle))
	}
	return out, nil
}

func (c *countingSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	c.calls.Add(1)
	out, err := c.SQS.DeleteMessageBatch(ctx, in, opts...)
	if err == nil {
		c.deleted.Add(int64(len(out.Successful)))
	}
	return out, err
}

// TestMessagesDeletedInBatches checks that messages finishing together
// are deleted in fewer calls than there are messages, that every one of
// them leaves the queue, and that a delete SQS refuses is reported for its
// own message alone.
func TestMessagesDeletedInBatches(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, 30, 0)
	const n = 40
	for range n {
		e.send("CloudTrail validation message.") // finishes as soon as it is parsed
	}
	q := &countingSQS{SQS: e.aws.SQS()}
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	reg := prometheus.NewRegistry()
	m := worker.NewMetrics(reg)
	cfg := e.config()
	proc := worker.NewProcessor(cfg, e.aws.S3(), e.pg, e.pg, m, log)
	w := worker.New(cfg, q, proc, m, log)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker.Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	// The spoiled message comes back after its visibility timeout and is
	// deleted then.
	e.waitFor("every message deleted", 30*time.Second, func() bool { return q.deleted.Load() == n })
	stop()
	if d := e.depth(e.queueURL); d != 0 {
		t.Errorf("%d messages left on the queue", d)
	}
	if got := counter(t, reg, "pgtrail_messages_deleted_total"); got != n {
		t.Errorf("pgtrail_messages_deleted_total = %v, want %d", got, n)
	}
	if calls := q.calls.Load(); calls >= n {
		t.Errorf("%d messages deleted in %d DeleteMessageBatch calls; want fewer calls than messages", n, calls)
	} else {
		t.Logf("%d messages deleted in %d calls", n, calls)
	}

	failed := logs.FilterMessage("delete message").All()
	if len(failed) != 1 {
		t.Fatalf("%d delete failures logged, want 1 (the invalid receipt handle's): %v", len(failed), failed)
	}
	if id := failed[0].ContextMap()["message_id"]; id != q.spoiled {
		t.Errorf("delete failure logged for message %v, want %s", id, q.spoiled)
	}
}

// counter returns the value of the counter name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
