package worker

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// heldSink notes, for every Write, whether its objects were decoded whole
// and how much memory the rows decoded before the write hold: a buffered
// object's rows, or the rows a streamed one decoded ahead. It counts the
// rows it reads. While hold is set, a Write waits that long after its
// first look, so that the next objects queue meanwhile.
type heldSink struct {
	hold time.Duration

	mu       sync.Mutex
	writes   int
	buffered int   // objects written whole
	streamed int   // objects streamed
	peak     int64 // most memory held by rows in Writes at once
	held     int64 // memory held by rows in Writes now
	events   int
}

// entriesHeld is the memory that entries decoded before the write take,
// counted as little as can be: the Entry values and their records' text.
func entriesHeld(entries []cloudtrail.Entry) (n int64) {
	for i := range entries {
		n += int64(unsafe.Sizeof(entries[i])) + int64(len(entries[i].Event.Record))
	}
	return n
}

func (s *heldSink) WriteBuffered(_ context.Context, objs []*sink.BufferedObject) ([]sink.WriteResult, error) {
	var held int64
	res := make([]sink.WriteResult, len(objs))
	for i, o := range objs {
		held += entriesHeld(o.Entries)
		res[i].Events = len(o.Entries)
	}
	return res, s.hold1(len(objs), 0, held, res)
}

func (s *heldSink) WriteStreamed(_ context.Context, obj *sink.StreamedObject) (sink.WriteResult, error) {
	var held int64
	if d, ok := obj.Entries.(*decodeStream); ok {
		held = entriesHeld(d.ahead)
	}
	res := []sink.WriteResult{{}}
	err := s.hold1(0, 1, held, nil)
	var e cloudtrail.Entry
	for obj.Entries.Next(&e) == nil {
		res[0].Events++
	}
	s.mu.Lock()
	s.events += res[0].Events
	s.mu.Unlock()
	return res[0], err
}

// hold1 notes one write of buffered and streamed objects whose entries
// decoded ahead hold held bytes, waits s.hold, and counts res's events.
func (s *heldSink) hold1(buffered, streamed int, held int64, res []sink.WriteResult) error {
	s.mu.Lock()
	s.writes++
	s.buffered += buffered
	s.streamed += streamed
	s.held += held
	s.peak = max(s.peak, s.held)
	s.mu.Unlock()
	time.Sleep(s.hold)

	s.mu.Lock()
	s.held -= held
	for _, r := range res {
		s.events += r.Events
	}
	s.mu.Unlock()
	return nil
}

// TestManyTinyRecordsStream checks that an object is decoded whole only
// while its rows are few enough, not only while its bytes are: 100,000
// records of 67 bytes (6.7 MB, under the byte bound) would take some 60 MB
// as rows, so the object must be streamed, holding no more than the
// buffered path's bound in rows decoded ahead. An ordinary CloudTrail
// object is still decoded whole.
func TestManyTinyRecordsStream(t *testing.T) {
	t.Parallel()
	var tiny bytes.Buffer
	if _, err := gen.WriteTiny(&tiny, 1, 100_000); err != nil {
		t.Fatal(err)
	}
	ordinary := gen.Generate(gen.Config{Seed: 3, Events: 200, MinRecords: 200}).Objects[0]
	for _, tc := range []struct {
		name     string
		body     []byte
		events   int
		buffered bool
	}{
		{"100k tiny records", tiny.Bytes(), 100_000, false},
		{"ordinary object", ordinary.Body, ordinary.Records, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := &heldSink{}
			p := NewProcessor(Config{}, nil, hs, nil, nil, zaptest.NewLogger(t))
			res, err := p.write(context.Background(), &sink.Object{Key: "f.json.gz"}, bytes.NewReader(tc.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Events != tc.events || hs.events != tc.events {
				t.Fatalf("%d events in the result, %d read by the sink, want %d", res.Events, hs.events, tc.events)
			}
			if got := hs.buffered == 1; got != tc.buffered {
				t.Errorf("decoded whole: %v, want %v", got, tc.buffered)
			}
			if hs.peak > maxBufferedBytes {
				t.Errorf("rows decoded before the write hold at least %.1f MB, want at most %.1f MB",
					float64(hs.peak)/(1<<20), float64(maxBufferedBytes)/(1<<20))
			}
		})
	}
}

// TestQueuedRowsBounded checks that the rows the batcher holds are bounded
// by their memory, not only by their count: objects of a few hundred large
// records each queue behind a slow transaction, and the transactions
// written at once must not hold more than the queue's budget.
func TestQueuedRowsBounded(t *testing.T) {
	t.Parallel()
	const objects, records = 8, 400
	pad := strings.Repeat("x", 10_000)
	bodies := make([][]byte, objects)
	for i := range bodies {
		var b bytes.Buffer
		b.WriteString(`{"Records":[`)
		for r := range records {
			if r > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"eventID":"q-%d-%d","eventTime":"2024-05-01T00:00:00Z","requestParameters":{"pad":"%s"}}`, i, r, pad)
		}
		b.WriteString(`]}`)
		bodies[i] = b.Bytes()
	}
	hs := &heldSink{hold: 200 * time.Millisecond}
	p := NewProcessor(Config{ObjectConcurrency: objects}, nil, hs, nil, nil, zaptest.NewLogger(t))
	var g errgroup.Group
	for i, body := range bodies {
		g.Go(func() error {
			_, err := p.write(context.Background(), &sink.Object{Key: fmt.Sprintf("q%d.json", i)}, bytes.NewReader(body), nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if hs.events != objects*records || hs.buffered != objects {
		t.Fatalf("%d events in %d objects decoded whole, want %d in %d", hs.events, hs.buffered, objects*records, objects)
	}
	t.Logf("%d objects in %d transactions; at most %.1f MB of rows in transactions at once", objects, hs.writes, float64(hs.peak)/(1<<20))
	if hs.peak > maxQueuedBytes {
		t.Errorf("transactions held %.1f MB of rows at once, want at most %.1f MB",
			float64(hs.peak)/(1<<20), float64(maxQueuedBytes)/(1<<20))
	}
}
