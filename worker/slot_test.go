package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// gatedSink holds its first Write until gate is closed, then counts like
// countingSink.
type gatedSink struct {
	countingSink
	gate   chan struct{}
	writes atomic.Int32
}

func (s *gatedSink) write(ctx context.Context, objs []*sink.StreamedObject) ([]sink.WriteResult, error) {
	if s.writes.Add(1) == 1 {
		<-s.gate
	}
	return s.countingSink.write(ctx, objs)
}

// TestSlotFreedWhileBatchCommits checks that an object waiting for its
// batch's commit does not hold its place in PGTRAIL_OBJECT_CONCURRENCY:
// with a concurrency of 1, the next objects are fetched while the first
// batch is still being written, and the message's objects are all stored.
func TestSlotFreedWhileBatchCommits(t *testing.T) {
	t.Parallel()
	body := trailFile("slot", 5)
	var gets atomic.Int32
	fake := &fakeS3{getObject: func(context.Context, *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
		gets.Add(1)
		return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(body)), ContentLength: aws.Int64(int64(len(body)))}, nil
	}}
	sink := &gatedSink{gate: make(chan struct{})}
	proc := worker.NewProcessor(worker.Config{ObjectConcurrency: 1}, fake, sinkFunc(sink.write), nil, nil, zaptest.NewLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var refs []worker.ObjectRef
	for i := range 4 {
		refs = append(refs, worker.ObjectRef{Bucket: "b", Key: fmt.Sprintf("AWSLogs/1/CloudTrail/%d.json.gz", i)})
	}
	done := make(chan error, 1)
	go func() { done <- proc.CommitMessage(ctx, "m1", refs) }()
	for gets.Load() < int32(len(refs)) {
		select {
		case err := <-done:
			t.Fatalf("Objects returned before the first write was let through: %v", err)
		case <-ctx.Done():
			t.Fatalf("%d of %d objects fetched while the first batch was held", gets.Load(), len(refs))
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(sink.gate)
	if err := <-done; err != nil {
		t.Fatalf("Objects: %v", err)
	}
	if sink.events != 5*len(refs) {
		t.Errorf("%d events stored, want %d", sink.events, 5*len(refs))
	}
}
