package sink_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// buffered is an object decoded ahead, as the processor batches them.
func buffered(key string, items ...cloudtrail.Entry) *testObject {
	return &testObject{Bucket: "bucket", Key: key, Size: 1, Entries: items}
}

// TestWriteBufferedCountsPerObject writes batches of objects decoded ahead:
// an event in two objects of one batch, events stored by an earlier batch,
// and rejects, each counted for the object that brought them.
func TestWriteBufferedCountsPerObject(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	day1 := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	reject := cloudtrail.Entry{Reject: &cloudtrail.Reject{S3Bucket: "bucket", S3Key: "b", Index: 2, Reason: "eventTime missing", Raw: `{}`}}

	res, err := write(ctx, pg, []*testObject{
		buffered("a", event("e1", day1, "a"), event("e2", day2, "a")),
		buffered("b", event("e2", day2, "b"), event("e3", day1, "b"), reject),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sink.WriteResult{{Events: 2, Inserted: 2}, {Events: 2, Inserted: 1, Duplicates: 1, Rejected: 1}}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("object %d: %+v, want %+v", i, res[i], want[i])
		}
	}

	// Several batches: the writer probes, then stops probing once batches
	// come clean, and must still find a stored event by its unique
	// violation.
	for i := range 6 {
		key := string(rune('c' + i))
		rows := []cloudtrail.Entry{event("n"+key, day1, key)}
		if i == 5 {
			rows = append(rows, event("e1", day1, key))
		}
		res, err = write(ctx, pg, []*testObject{buffered(key, rows...)})
		if err != nil {
			t.Fatal(err)
		}
		wantIns := 1
		if res[0].Inserted != wantIns || res[0].Duplicates != len(rows)-wantIns {
			t.Errorf("batch %d: %+v", i, res[0])
		}
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 9 {
		t.Errorf("%d events stored, want 9", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_rejects`); n != 1 {
		t.Errorf("%d rejects stored, want 1", n)
	}
	if n := count(t, pg, `SELECT duplicates FROM cloudtrail_objects WHERE s3_key = 'h'`); n != 1 {
		t.Errorf("ledger of h: %d duplicates, want 1", n)
	}
	// The stored time is the event's, to the microsecond.
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events WHERE event_id = 'e1' AND event_time = $1`, day1.Truncate(time.Microsecond)); n != 1 {
		t.Errorf("e1 at %s: %d rows", day1, n)
	}
}

// TestWriteBufferedConcurrentOverlapNoDeadlock writes, many times over, two
// batches at once that carry the same events in opposite orders (as when a
// second trail's copy of a file is written beside the first), by COPY or
// through the staging table: each event is stored once, and neither write
// fails, as it would if the two waited on each other in a cycle.
func TestWriteBufferedConcurrentOverlapNoDeadlock(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	const rounds, n = 10, 600
	for r := range rounds {
		fwd := make([]cloudtrail.Entry, n)
		for i := range fwd {
			fwd[i] = event(fmt.Sprintf("r%d-e%04d", r, i), base.Add(time.Duration(i)*time.Second), "fwd")
		}
		rev := slices.Clone(fwd)
		slices.Reverse(rev)
		for i := range rev {
			rev[i].Event.S3Key = "rev"
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for w, items := range [][]cloudtrail.Entry{fwd, rev} {
			wg.Go(func() {
				// Two objects per batch, so that the batch is not one
				// object's own order. In odd rounds the second writer
				// streams its objects through the staging table.
				half := len(items) / 2
				a := buffered(fmt.Sprintf("r%d-%d-a", r, w), items[:half]...)
				b := buffered(fmt.Sprintf("r%d-%d-b", r, w), items[half:]...)
				if w == 1 && r%2 == 1 {
					a.Stream = &rows{items: items[:half]}
					b.Stream = &rows{items: items[half:]}
				}
				_, errs[w] = write(ctx, pg, []*testObject{a, b})
			})
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Fatalf("round %d, writer %d: %v", r, w, err)
			}
		}
		if got := count(t, pg, `SELECT count(*) FROM cloudtrail_events WHERE event_id LIKE $1`, fmt.Sprintf("r%d-%%", r)); got != n {
			t.Fatalf("round %d: %d events stored, want %d", r, got, n)
		}
	}
}
