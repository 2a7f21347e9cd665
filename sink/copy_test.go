package sink

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/cloudtrail"
)

// copyTestEvents returns generated events, one with every optional field
// empty, and one whose record is bigger than any buffer COPY reads into.
func copyTestEvents(t *testing.T) []*cloudtrail.Event {
	t.Helper()
	set := gen.Generate(gen.Config{Seed: 7, Events: 2_000})
	var evs []*cloudtrail.Event
	for _, o := range set.Objects {
		dec, err := cloudtrail.NewDecoder(bytes.NewReader(o.Body), cloudtrail.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			var row cloudtrail.Entry
			err := dec.NextEntry(&row, "bucket", o.Key)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if row.Reject != nil {
				t.Fatalf("%s: %s", o.Key, row.Reject.Reason)
			}
			evs = append(evs, &row.Event)
		}
	}
	bare := &cloudtrail.Event{EventID: "bare", EventTime: time.Unix(0, 0).UTC(), Record: []byte(`{}`)}
	huge := *evs[0]
	huge.EventID = "huge"
	huge.Record = []byte(`{"x":"` + strings.Repeat("a", 300<<10) + `"}`)
	huge.RequestParameters = []byte(`{"y":"` + strings.Repeat("b", 70<<10) + `"}`)
	return append([]*cloudtrail.Event{bare, &huge}, append(evs, &huge, bare)...)
}

// TestEventReader checks that the stream COPY reads, whatever the size of
// its buffer, is the one EncodeEvents builds, and that every row's size
// bound holds.
func TestEventReader(t *testing.T) {
	evs := copyTestEvents(t)
	flat := make([]cloudtrail.Event, len(evs))
	for i, e := range evs {
		flat[i] = *e
		if got, bound := len(appendEventRow(nil, e, true)), rowSizeBound(e); got > bound {
			t.Fatalf("event %s: row of %d bytes over its bound %d", e.EventID, got, bound)
		}
	}
	for _, jsonb := range []bool{true, false} {
		want := EncodeEvents(nil, flat, jsonb)
		for _, size := range []int{len(copyHeader), 100, 4096, 65531, 1 << 20} {
			r := &eventReader{evs: evs, jsonb: jsonb}
			var got []byte
			p := make([]byte, size)
			for reads := 0; ; reads++ {
				n, err := r.Read(p)
				got = append(got, p[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("buffer %d: %v", size, err)
				}
				if n == 0 || reads > len(want) {
					t.Fatalf("buffer %d: no progress after %d bytes", size, len(got))
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("jsonb %v, buffer %d: stream of %d bytes differs from EncodeEvents' %d", jsonb, size, len(got), len(want))
			}
		}
	}
}
