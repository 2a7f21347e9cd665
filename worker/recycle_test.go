package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// checkingSink compares every row it is given with the record expected at
// its place, when the write begins and again when it ends, after a pause
// in which other objects are decoded: a row whose memory was handed to
// another object too early reads back changed.
type checkingSink struct {
	want map[string][][]byte // key → records, in order

	mu      sync.Mutex
	objects int
	events  int
	errs    []error // what the checks found (the processor retries a failed write)
}

func (s *checkingSink) write(_ context.Context, objs []*sink.StreamedObject) ([]sink.WriteResult, error) {
	res := make([]sink.WriteResult, len(objs))
	var rows [][]cloudtrail.Entry
	for i, o := range objs {
		got, err := allEntries(o.Entries)
		if err != nil {
			return nil, err
		}
		rows = append(rows, got)
		res[i].Events, res[i].Inserted = len(got), len(got)
	}
	check := func(when string) error {
		for i, o := range objs {
			want := s.want[o.Key]
			if len(rows[i]) != len(want) {
				return fmt.Errorf("%s: %d rows %s, want %d", o.Key, len(rows[i]), when, len(want))
			}
			for j, r := range rows[i] {
				if !bytes.Equal(r.Event.Record, want[j]) || r.Event.EventID == "" {
					return fmt.Errorf("%s: record %d changed %s:\n%.200s\nwant\n%.200s", o.Key, j, when, r.Event.Record, want[j])
				}
			}
		}
		return nil
	}
	err := check("when the write began")
	if err == nil {
		time.Sleep(time.Millisecond)
		err = check("by the end of the write")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		return nil, err
	}
	s.objects += len(objs)
	s.events += res[0].Events
	for _, r := range res[1:] {
		s.events += r.Events
	}
	return res, nil
}

// allEntries reads src to the end.
func allEntries(src sink.EntrySource) ([]cloudtrail.Entry, error) {
	var rows []cloudtrail.Entry
	for {
		var row cloudtrail.Entry
		err := src.Next(&row)
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
}

// TestRecycledRowsIntact runs many objects through the processor at once,
// as batches, so that the memory of committed objects' rows is reused for
// the next ones, and checks that no row changes before its write is over.
// Some objects come without a length (read as a stream, not whole).
func TestRecycledRowsIntact(t *testing.T) {
	t.Parallel()
	set := gen.Generate(gen.Config{Seed: 11, Events: 30_000})
	bodies := map[string][]byte{}
	sink := &checkingSink{want: map[string][][]byte{}}
	total := 0
	for _, o := range set.Objects {
		bodies[o.Key] = o.Body
		dec, err := cloudtrail.NewDecoder(bytes.NewReader(o.Body), cloudtrail.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			raw, err := dec.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sink.want[o.Key] = append(sink.want[o.Key], bytes.Clone(raw))
			total++
		}
	}
	fake := &fakeS3{getObject: func(_ context.Context, in *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
		body := bodies[aws.ToString(in.Key)]
		out := &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(body))}
		if len(body)%4 != 0 {
			out.ContentLength = aws.Int64(int64(len(body)))
		}
		return out, nil
	}}
	proc := worker.NewProcessor(worker.Config{ObjectConcurrency: 8}, fake, sinkFunc(sink.write), nil, nil, zaptest.NewLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var g errgroup.Group
	g.SetLimit(24)
	for i, o := range set.Objects {
		g.Go(func() error {
			return proc.CommitMessage(ctx, fmt.Sprintf("m%d", i), []worker.ObjectRef{{Bucket: "b", Key: o.Key}})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(sink.errs) > 0 {
		t.Fatalf("%d writes saw rows change, first: %v", len(sink.errs), sink.errs[0])
	}
	if sink.objects != len(set.Objects) || sink.events != total {
		t.Fatalf("%d objects and %d events written, want %d and %d", sink.objects, sink.events, len(set.Objects), total)
	}
}
