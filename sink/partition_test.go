package sink_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
)

// partitionOf returns the partition that holds event id.
func partitionOf(t *testing.T, pg *sink.Postgres, id string) string {
	t.Helper()
	var part string
	if err := pg.Pool().QueryRow(context.Background(),
		`SELECT tableoid::regclass::text FROM cloudtrail_events WHERE event_id = $1`, id).Scan(&part); err != nil {
		t.Fatalf("event %s: %v", id, err)
	}
	return part
}

func TestWriteBackfillsAnyDay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	cases := []struct {
		at   time.Time
		part string
	}{
		{time.Date(2013, 11, 13, 0, 0, 0, 0, time.UTC), "cloudtrail_events_20131113"},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "cloudtrail_events_19700101"},
		{time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC), "cloudtrail_events_19691231"}, // before the Unix epoch
		{time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), "cloudtrail_events_19691231"},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "cloudtrail_events_00010101"},
		{time.Date(0, 6, 1, 12, 0, 0, 0, time.UTC), "cloudtrail_events_00010601_bc"}, // year 0 is 1 BC
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "cloudtrail_events_99991231"},
		{time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC), "cloudtrail_events_20240229"},
		{time.Date(2024, 3, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600)), "cloudtrail_events_20240229"}, // 23:00 UTC
	}
	var items []cloudtrail.Entry
	for i, c := range cases {
		items = append(items, event(fmt.Sprint("e", i), c.at, "k"))
	}
	res, err := write(ctx, pg, []*testObject{{Bucket: "bucket", Key: "k", Stream: &rows{items: items}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Inserted != len(cases) {
		t.Errorf("inserted %d, want %d", res[0].Inserted, len(cases))
	}
	for i, c := range cases {
		if got := partitionOf(t, pg, fmt.Sprint("e", i)); got != c.part {
			t.Errorf("event at %s is in %s, want %s", c.at.UTC(), got, c.part)
		}
	}
}

// TestPartitionCreationDoesNotWaitForReaders: a long analyst query on
// cloudtrail_events must not hold up writers that need a new partition.
func TestPartitionCreationDoesNotWaitForReaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	if _, err := write(ctx, pg, []*testObject{{Bucket: "b", Key: "first", Stream: &rows{items: []cloudtrail.Entry{
		event("e0", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "first")}}}}); err != nil {
		t.Fatal(err)
	}
	reader, err := pg.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(ctx) //nolint:errcheck
	var n int
	if err := reader.QueryRow(ctx, `SELECT count(*) FROM cloudtrail_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}

	// Eight writers, each a process of its own, write the same new days.
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, err := sink.Open(wctx, sink.Config{URL: pg.Pool().Config().ConnString(), MaxConns: 2}, zaptest.NewLogger(t))
			if err != nil {
				errs[w] = err
				return
			}
			defer other.Close()
			var items []cloudtrail.Entry
			for d := range 5 {
				at := time.Date(2024, 2, 1+d, w, 0, 0, 0, time.UTC)
				items = append(items, event(fmt.Sprintf("w%d-d%d", w, d), at, "k"), event(fmt.Sprintf("shared-d%d", d), time.Date(2024, 2, 1+d, 0, 0, 0, 0, time.UTC), "k"))
			}
			_, errs[w] = write(wctx, other, []*testObject{{Bucket: "b", Key: fmt.Sprint("w", w), Stream: &rows{items: items}}})
		}()
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("writer %d (while a reader holds the table): %v", w, err)
		}
	}
	if err := reader.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 1+writers*5+5 {
		t.Errorf("%d events, want %d", n, 1+writers*5+5)
	}
	if n := count(t, pg, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass`); n != 6 {
		t.Errorf("%d partitions, want 6", n)
	}
}

// TestWriteRecreatesPartitionDroppedElsewhere: when another process's
// retention drops a partition this one believes exists, the write fails
// as worth retrying, and the retry creates the partition again.
func TestWriteRecreatesPartitionDroppedElsewhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	other, err := sink.Open(ctx, sink.Config{URL: pg.Pool().Config().ConnString()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	day := time.Date(2019, 5, 5, 5, 0, 0, 0, time.UTC)
	write := func(id string) error {
		_, err := write(ctx, pg, []*testObject{{Bucket: "b", Key: id, Stream: &rows{items: []cloudtrail.Entry{event(id, day, id)}}}})
		return err
	}
	if err := write("e1"); err != nil {
		t.Fatal(err)
	}
	if parts, err := other.DropPartitionsBefore(ctx, day.AddDate(0, 0, 1), false); err != nil || len(parts) != 1 {
		t.Fatalf("drop: %v, %v", parts, err)
	}
	err = write("e2")
	if err == nil || retry.IsPermanent(err) {
		t.Fatalf("write to a partition dropped elsewhere: %v; want an error worth retrying", err)
	}
	if err := write("e2"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got := partitionOf(t, pg, "e2"); got != "cloudtrail_events_20190505" {
		t.Errorf("e2 is in %s", got)
	}
}

// TestEnsurePartitionRespectsHandMadeTables: a month partition made by hand
// takes its days' rows; a stray table with a partition's name is an error.
func TestEnsurePartitionRespectsHandMadeTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	if _, err := pg.Pool().Exec(ctx, `
        CREATE TABLE cloudtrail_events_2020_02 PARTITION OF cloudtrail_events
            FOR VALUES FROM ('2020-02-01 00:00:00+00') TO ('2020-03-01 00:00:00+00');
        CREATE TABLE cloudtrail_events_20210101 (x int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := write(ctx, pg, []*testObject{{Bucket: "b", Key: "k", Stream: &rows{items: []cloudtrail.Entry{
		event("feb", time.Date(2020, 2, 10, 0, 0, 0, 0, time.UTC), "k")}}}}); err != nil {
		t.Fatal(err)
	}
	if got := partitionOf(t, pg, "feb"); got != "cloudtrail_events_2020_02" {
		t.Errorf("event of 2020-02-10 is in %s, want the month partition", got)
	}
	_, err := write(ctx, pg, []*testObject{{Bucket: "b", Key: "k2", Stream: &rows{items: []cloudtrail.Entry{
		event("stray", time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), "k2")}}}})
	if err == nil || !strings.Contains(err.Error(), "is not a partition of cloudtrail_events") {
		t.Errorf("write beside a stray table: %v; want a clear error", err)
	}
}
