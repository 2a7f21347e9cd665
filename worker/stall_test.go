package worker_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// fakeS3 is an S3 of function fields.
type fakeS3 struct {
	getObject func(ctx context.Context, in *s3.GetObjectInput) (*s3.GetObjectOutput, error)
}

func (f *fakeS3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return f.getObject(ctx, in)
}

// sinkFunc is a worker.Sink made of one function that reads every object,
// buffered or streamed, through its EntrySource.
type sinkFunc func(ctx context.Context, objs []*sink.StreamedObject) ([]sink.WriteResult, error)

func (f sinkFunc) WriteBuffered(ctx context.Context, objs []*sink.BufferedObject) ([]sink.WriteResult, error) {
	streams := make([]*sink.StreamedObject, len(objs))
	for i, o := range objs {
		streams[i] = &sink.StreamedObject{Object: o.Object, Entries: &entrySlice{entries: o.Entries}}
	}
	return f(ctx, streams)
}

func (f sinkFunc) WriteStreamed(ctx context.Context, obj *sink.StreamedObject) (sink.WriteResult, error) {
	res, err := f(ctx, []*sink.StreamedObject{obj})
	if err != nil {
		return sink.WriteResult{}, err
	}
	return res[0], nil
}

// entrySlice is an EntrySource over a slice.
type entrySlice struct{ entries []cloudtrail.Entry }

func (s *entrySlice) Next(e *cloudtrail.Entry) error {
	if len(s.entries) == 0 {
		return io.EOF
	}
	*e, s.entries = s.entries[0], s.entries[1:]
	return nil
}

// countingSink reads every entry of what it is given and counts the events.
type countingSink struct {
	mu     sync.Mutex
	events int
}

func (s *countingSink) write(_ context.Context, objs []*sink.StreamedObject) ([]sink.WriteResult, error) {
	res := make([]sink.WriteResult, len(objs))
	for i, o := range objs {
		rows, err := allEntries(o.Entries)
		if err != nil {
			return nil, err
		}
		res[i].Events, res[i].Inserted = len(rows), len(rows)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range res {
		s.events += r.Events
	}
	return res, nil
}

// stallingBody sends head, then nothing until its request is cancelled,
// as a connection that goes silent does.
type stallingBody struct {
	ctx  context.Context
	head *bytes.Reader
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if b.head.Len() > 0 {
		return b.head.Read(p)
	}
	<-b.ctx.Done()
	return 0, errors.New("read tcp: use of closed network connection")
}

func (b *stallingBody) Close() error { return nil }

// TestS3StallIsRetried checks that an S3 request that goes silent, before
// its answer or in the middle of its body, is given up after the stall
// timeout and retried, instead of holding its object for good.
func TestS3StallIsRetried(t *testing.T) {
	t.Parallel()
	body := trailFile("stall", 20)
	for _, where := range []string{"answer", "body"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			fake := &fakeS3{getObject: func(ctx context.Context, in *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
				if calls.Add(1) > 1 {
					return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(body)), ContentLength: aws.Int64(int64(len(body)))}, nil
				}
				if where == "answer" {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return &s3.GetObjectOutput{Body: &stallingBody{ctx: ctx, head: bytes.NewReader(body[:len(body)/2])}}, nil
			}}
			core, logs := observer.New(zapcore.WarnLevel)
			sink := &countingSink{}
			cfg := worker.Config{
				StallTimeout: 200 * time.Millisecond,
				Backoff:      retry.Backoff{Base: time.Millisecond, Max: time.Millisecond, Attempts: 3},
			}
			proc := worker.NewProcessor(cfg, fake, sinkFunc(sink.write), nil, nil, zap.New(core))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			if err := proc.CommitMessage(ctx, "m1", []worker.ObjectRef{{Bucket: "b", Key: "k"}}); err != nil {
				t.Fatalf("Objects: %v", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s with a stall timeout of 200ms", took)
			}
			if calls.Load() != 2 || sink.events != 20 {
				t.Errorf("%d GetObject calls and %d events; want 2 and 20", calls.Load(), sink.events)
			}
			retries := logs.FilterMessage("object failed; retrying").All()
			if len(retries) != 1 || !strings.Contains(retries[0].ContextMap()["error"].(string), "no data from S3 for 200ms") {
				t.Errorf("retries logged: %v; want one that names the stall", retries)
			}
		})
	}
}
