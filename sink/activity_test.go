package sink_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/testdb"
	"github.com/pgtrail/pgtrail/sink"
)

// failed is event with an error code.
func failed(id string, at time.Time, key string) cloudtrail.Entry {
	e := event(id, at, key)
	e.Event.ErrorCode = "AccessDenied"
	return e
}

// hourRows reads "hour events errors" lines from q.
func hourRows(t *testing.T, pg *sink.Postgres, q string) []string {
	t.Helper()
	rs, _ := pg.Pool().Query(context.Background(), q)
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (string, error) {
		var at time.Time
		var events, errs int64
		err := r.Scan(&at, &events, &errs)
		return fmt.Sprintf("%s %d %d", at.UTC().Format(time.RFC3339), events, errs), err
	})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// checkActivity checks that cloudtrail_activity sums, hour by hour, to
// what cloudtrail_events holds.
func checkActivity(t *testing.T, pg *sink.Postgres, step string) {
	t.Helper()
	got := hourRows(t, pg, `SELECT hour, sum(events)::bigint, sum(errors)::bigint FROM cloudtrail_activity GROUP BY 1 ORDER BY 1`)
	want := hourRows(t, pg, `SELECT date_bin('1 hour', event_time, timestamptz '1970-01-01 00:00:00+00'), count(*), count(error_code)
        FROM cloudtrail_events GROUP BY 1 ORDER BY 1`)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: activity\n%v\nwant (counted)\n%v", step, got, want)
	}
}

// TestActivityCountsWhatEachWriteInserts writes through every path (COPY,
// the staging table, its refusing and one-at-a-time fallbacks), with
// duplicates within a write and across writes, and checks the activity
// rows against the events after each.
func TestActivityCountsWhatEachWriteInserts(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	h := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		name string
		objs []*testObject
	}{
		{"copy", []*testObject{buffered("a", event("a1", h, "a"), failed("a2", h.Add(59*time.Minute), "a"), event("a3", h.Add(time.Hour), "a"))}},
		{"copy, a batch with stored events", []*testObject{
			buffered("b", event("a1", h, "b"), event("b1", h.Add(2*time.Hour), "b")),
			buffered("c", failed("c1", h.Add(-time.Minute), "c"), failed("a2", h.Add(59*time.Minute), "c")),
		}},
		{"staging, duplicates within and across", []*testObject{streamed("d",
			event("d1", h, "d"), failed("d2", h.Add(30*time.Minute), "d"), event("d1", h, "d"), event("b1", h.Add(2*time.Hour), "d"))}},
		{"redelivery", []*testObject{
			buffered("a", event("a1", h, "a"), failed("a2", h.Add(59*time.Minute), "a"), event("a3", h.Add(time.Hour), "a")),
			streamed("d", event("d1", h, "d"), failed("d2", h.Add(30*time.Minute), "d")),
		}},
		{"a refused value", []*testObject{
			buffered("e", refusedRow("e-r", "e", overflow), failed("e1", h.Add(3*time.Hour), "e")),
			streamed("f", refusedRow("f-r", "f", overflow), event("f1", h.Add(3*time.Hour), "f"), event("a1", h, "f")),
		}},
	}
	for _, s := range steps {
		if _, err := write(ctx, pg, s.objs); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		checkActivity(t, pg, s.name)
	}
	// A constraint no cast shows: the staged events go in one at a time.
	if _, err := pg.Pool().Exec(ctx, `ALTER TABLE cloudtrail_events ADD CONSTRAINT no_g1 CHECK (event_id <> 'g1')`); err != nil {
		t.Fatal(err)
	}
	res, err := write(ctx, pg, []*testObject{streamed("g",
		event("g1", h, "g"), failed("g2", h.Add(4*time.Hour), "g"), event("g3", h.Add(4*time.Hour), "g"), failed("g2", h.Add(4*time.Hour), "g"), event("a1", h, "g"))})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Inserted != 2 || res[0].Rejected != 1 {
		t.Fatalf("one at a time: %+v, want 2 inserted, 1 rejected", res[0])
	}
	checkActivity(t, pg, "one at a time")
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 11 {
		t.Fatalf("%d events, want 11", n)
	}
}

// TestActivityCompaction merges rows while writers add theirs, then drops
// the hours of dropped partitions; the sums hold at every step.
func TestActivityCompaction(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	compacted := make(chan int)
	for range 2 { // two workers' compactions at once
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					compacted <- n
					return
				default:
				}
				if _, err := pg.CompactActivity(ctx, time.Time{}); err != nil {
					t.Error(err)
				}
				n++
			}
		}()
	}
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 20 {
				var items []cloudtrail.Entry
				key := fmt.Sprintf("w%d-%d", w, i)
				for range 30 {
					id := fmt.Sprintf("e%d", rng.IntN(400)) // shared among writers: duplicates
					at := base.Add(time.Duration(rng.IntN(72)) * time.Hour).Add(time.Duration(len(id)) * time.Minute)
					if rng.IntN(3) == 0 {
						items = append(items, failed(id, at, key))
					} else {
						items = append(items, event(id, at, key))
					}
				}
				obj := buffered(key, items...)
				if i%2 == 1 {
					obj = streamed(key, items...)
				}
				if _, err := write(ctx, pg, []*testObject{obj}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	t.Logf("%d compactions during the writes", <-compacted+<-compacted)
	checkActivity(t, pg, "after concurrent writes and compactions")

	if _, err := pg.CompactActivity(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	checkActivity(t, pg, "compacted")
	if n := count(t, pg, `SELECT count(*) FROM (SELECT hour FROM cloudtrail_activity GROUP BY 1 HAVING count(*) > 1) s`); n != 0 {
		t.Errorf("%d hours with more than one row after compaction", n)
	}

	// Retention: the hours of the dropped days go with them, in the same
	// transaction; a dry run leaves them.
	cutoff := base.AddDate(0, 0, 2)
	if _, err := pg.DropPartitionsBefore(ctx, cutoff, true); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_activity WHERE hour < $1`, cutoff); n == 0 {
		t.Error("a dry run deleted the activity rows before the cutoff")
	}
	if _, err := pg.DropPartitionsBefore(ctx, cutoff, false); err != nil {
		t.Fatal(err)
	}
	checkActivity(t, pg, "after retention")
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_activity WHERE hour < $1`, cutoff); n != 0 {
		t.Errorf("%d activity rows before the cutoff", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_activity`); n == 0 {
		t.Error("no activity rows left after the cutoff")
	}
	// The same floor as the partitions': no deleting what retention keeps.
	if _, err := pg.Pool().Exec(ctx, `INSERT INTO pgtrail_retention_floor (days) VALUES (30)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.CompactActivity(ctx, time.Now().AddDate(0, 0, -10)); err == nil {
		t.Error("a cutoff within the retention floor was not refused")
	}
}

// TestActivityMigrationCountsStoredEvents: 0014 counts what was stored
// before it, by a worker that wrote no activity rows.
func TestActivityMigrationCountsStoredEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setupTo(t, 13)
	h := time.Date(2024, 5, 1, 7, 30, 0, 0, time.UTC)
	if _, err := write(ctx, pg, []*testObject{
		buffered("a", event("a1", h, "a"), failed("a2", h.Add(time.Hour), "a")),
		streamed("b", failed("b1", h, "b"), event("a1", h, "b")),
	}); err != nil {
		t.Fatalf("write before 0014: %v", err)
	}
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkActivity(t, pg, "migrated")
	if n := count(t, pg, `SELECT sum(events)::int FROM cloudtrail_activity`); n != 3 {
		t.Fatalf("%d events counted, want 3", n)
	}
	// And the writer, told of the new table by Migrate, adds its rows.
	if _, err := write(ctx, pg, []*testObject{buffered("c", event("c1", h, "c"))}); err != nil {
		t.Fatal(err)
	}
	checkActivity(t, pg, "written after migrating")
}

// TestHistoryActivityReadsTheHours compares the chart's buckets, read from
// the activity rows for the whole hours of a range, with the events
// counted one by one, over ranges that begin and end inside hours, reach
// before the oldest partition, and buckets of an hour, a day, a week and
// half an hour (which the rows cannot serve).
func TestHistoryActivityReadsTheHours(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg, url := testdb.Open(t)
	base := time.Date(2024, 6, 3, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 7))
	type ev struct {
		at     time.Time
		failed bool
	}
	var evs []ev
	var items []cloudtrail.Entry
	for i := range 600 {
		at := base.Add(time.Duration(rng.Int64N(int64(9 * 24 * time.Hour)))).Truncate(time.Second)
		e := event(fmt.Sprintf("h%d", i), at, "k")
		if rng.IntN(4) == 0 {
			e.Event.ErrorCode = "Throttling"
		}
		evs = append(evs, ev{at, e.Event.ErrorCode != ""})
		items = append(items, e)
	}
	if _, err := write(ctx, pg, []*testObject{buffered("k", items[:300]...), streamed("k2", items[300:]...)}); err != nil {
		t.Fatal(err)
	}
	r := openReader(t, url)

	oracle := func(start, end time.Time, bucket time.Duration) []sink.ActivityBucket {
		origin := start
		if bucket%time.Hour == 0 {
			origin = start.Truncate(time.Hour)
		}
		sums := map[time.Time]*sink.ActivityBucket{}
		for _, e := range evs {
			if e.at.Before(start) || e.at.After(end) {
				continue
			}
			b := origin.Add(e.at.Sub(origin) / bucket * bucket)
			s := sums[b]
			if s == nil {
				s = &sink.ActivityBucket{Start: b}
				sums[b] = s
			}
			s.Events++
			if e.failed {
				s.Errors++
			}
		}
		var out []sink.ActivityBucket
		for _, s := range sums {
			out = append(out, *s)
		}
		slices.SortFunc(out, func(a, b sink.ActivityBucket) int { return a.Start.Compare(b.Start) })
		return out
	}
	same := func(a, b []sink.ActivityBucket) bool {
		return slices.EqualFunc(a, b, func(x, y sink.ActivityBucket) bool {
			return x.Start.Equal(y.Start) && x.Events == y.Events && x.Errors == y.Errors
		})
	}
	ranges := [][2]time.Time{
		{base, base.Add(9 * 24 * time.Hour)},
		{base.Add(-40 * 24 * time.Hour), base.Add(30 * 24 * time.Hour)}, // before the oldest partition
		{base.Add(90*time.Minute + 17*time.Second), base.Add(5*24*time.Hour + 20*time.Minute)},
		{base.Add(26*time.Hour + 5*time.Minute), base.Add(26*time.Hour + 50*time.Minute)}, // inside one hour
		{base.Add(47*time.Hour + 59*time.Minute), base.Add(49*time.Hour + time.Second)},
	}
	for _, rg := range ranges {
		for _, bucket := range []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * time.Minute} {
			f := sink.HistoryFilter{Start: rg[0], End: rg[1]}
			got, err := r.HistoryActivity(ctx, f, bucket)
			if err != nil {
				t.Fatal(err)
			}
			if want := oracle(rg[0], rg[1], bucket); !same(got, want) {
				t.Errorf("%s..%s by %s:\n%v\nwant\n%v", rg[0].Format(time.RFC3339), rg[1].Format(time.RFC3339), bucket, got, want)
			}
			// The same through the events alone (a filter every event passes).
			f.NameContains = "getobj"
			if counted, err := r.HistoryActivity(ctx, f, bucket); err != nil || !same(counted, got) {
				t.Errorf("%s..%s by %s, counted: %v (%v), want %v", rg[0].Format(time.RFC3339), rg[1].Format(time.RFC3339), bucket, counted, err, got)
			}
		}
	}

	// The unfiltered chart does read the rows: one more row shows.
	extra := base.Add(50 * time.Hour)
	if _, err := pg.Pool().Exec(ctx, `INSERT INTO cloudtrail_activity (hour, events, errors) VALUES ($1, 1000, 1)`, extra); err != nil {
		t.Fatal(err)
	}
	got, err := r.HistoryActivity(ctx, sink.HistoryFilter{Start: base, End: base.Add(9 * 24 * time.Hour)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got, func(b sink.ActivityBucket) bool { return b.Start.Equal(extra) })
	if i < 0 || got[i].Events < 1000 {
		t.Errorf("the hour %s: %v; want the added row's 1,000 events in it", extra, got)
	}
}
