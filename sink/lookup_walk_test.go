package sink_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// walkDay0 is the first day of the walk tests' data: 40 day partitions
// from it, some of them empty.
var walkDay0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// walkData is a database of 40 day partitions (days 0 to 39 from walkDay0,
// every one made, days 3, 4 and 25 left empty) holding events "Common" at
// midnight, at 23:59:59 and twice at noon (the same second), "Rare"
// events on the given days at 06:00, and Insights events on days 7 and 12.
// It returns the database's URL.
func walkData(t *testing.T, rareDays ...int) string {
	t.Helper()
	url := pgtest.New(t)
	addRecords(t, url)
	owner := ownerConn(t, url)
	if _, err := owner.Exec(context.Background(), `
SELECT pgtrail_ensure_partition(d::date) FROM generate_series($1::date, $1::date + 39, interval '1 day') d`, walkDay0); err != nil {
		t.Fatal(err)
	}
	var recs []string
	for d := range 40 {
		if d == 3 || d == 4 || d == 25 {
			continue
		}
		day := walkDay0.AddDate(0, 0, d)
		recs = append(recs,
			rec(fmt.Sprintf("c%02d-0", d), day, "Common", nil),
			rec(fmt.Sprintf("c%02d-1", d), day.Add(12*time.Hour), "Common", map[string]any{"readOnly": true}),
			rec(fmt.Sprintf("c%02d-2", d), day.Add(12*time.Hour), "Common", nil),
			rec(fmt.Sprintf("c%02d-3", d), day.Add(24*time.Hour-time.Second), "Common", nil))
		if slices.Contains(rareDays, d) {
			recs = append(recs, rec(fmt.Sprintf("r%02d", d), day.Add(6*time.Hour), "Rare", nil))
		}
		if d == 7 || d == 12 {
			recs = append(recs, rec(fmt.Sprintf("i%02d", d), day.Add(9*time.Hour), "CloudTrailInsightEvent",
				map[string]any{"eventType": "AwsCloudTrailInsight", "eventSource": "cloudtrail.amazonaws.com"}))
		}
	}
	addRecords(t, url, recs...)
	return url
}

// ownerConn is a connection to the database at url as its owner.
func ownerConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// oneConnReader is a Reader of one connection on the database at url, so
// that every lookup finds the statements the one before prepared.
func oneConnReader(t *testing.T, url string) *sink.Reader {
	t.Helper()
	r, err := sink.OpenReader(context.Background(), sink.Config{URL: url, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// pageAll pages through q with lookup, and returns every page's IDs;
// between, when set, runs after each page but the last.
func pageAll(t *testing.T, q sink.LookupQuery, lookup func(sink.LookupQuery) ([]sink.LookupEvent, error), between func(page int)) [][]string {
	t.Helper()
	var pages [][]string
	for n := range 200 {
		page, err := lookup(q)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, ids(page))
		if len(page) < q.Limit {
			return pages
		}
		last := page[len(page)-1]
		q.After = &sink.LookupCursor{Time: last.EventTime, ID: last.EventID}
		if between != nil {
			between(n)
		}
	}
	t.Fatal("no end")
	return nil
}

// TestLookupWalkMatchesWindows: reading whole partitions by their own
// statements gives the pages that reading windows gave, page for page,
// whatever the attribute, the page size, and ranges that begin and end
// inside a partition or on its bound.
func TestLookupWalkMatchesWindows(t *testing.T) {
	url := walkData(t, 2, 9, 10, 31)
	r := openReader(t, url)
	ctx := context.Background()
	kinds := []sink.LookupQuery{{}, {Attributes: []sink.LookupAttribute{{"EventName", "Common"}}},
		{Attributes: []sink.LookupAttribute{{"EventName", "Rare"}}}, {Attributes: []sink.LookupAttribute{{"ReadOnly", "true"}}},
		{Attributes: []sink.LookupAttribute{{"Username", "alice"}, {"EventName", "Rare"}}}, {Insight: true}}
	starts := []time.Time{{}, walkDay0.AddDate(0, 0, 10).Add(5 * time.Hour), walkDay0.AddDate(0, 0, 2)}
	ends := []time.Time{walkDay0.AddDate(0, 0, 39).Add(12 * time.Hour), walkDay0.AddDate(0, 0, 20)}
	for _, kind := range kinds {
		for _, start := range starts {
			for _, end := range ends {
				for _, limit := range []int{3, 50} {
					q := kind
					q.Start, q.End, q.Limit = start, end, limit
					name := fmt.Sprintf("%v (Insights %t) from %s to %s by %d", q.Attributes, q.Insight,
						start.Format(time.DateTime), end.Format(time.DateTime), limit)
					got := pageAll(t, q, func(q sink.LookupQuery) ([]sink.LookupEvent, error) { return r.LookupEvents(ctx, q) }, nil)
					want := pageAll(t, q, func(q sink.LookupQuery) ([]sink.LookupEvent, error) { return sink.LookupByWindows(ctx, r, q) }, nil)
					if !slices.EqualFunc(got, want, slices.Equal) {
						t.Errorf("%s:\n got %v\nwant %v", name, got, want)
					}
					if len(slices.Concat(want...)) == 0 && (q.Attributes == nil || q.Insight) && end.After(walkDay0.AddDate(0, 0, 12)) {
						t.Errorf("%s: nothing found, the test proves nothing", name)
					}
				}
			}
		}
	}
}

// TestLookupWalkOldestPartition: a value found only in the oldest
// partition is found at the end of the walk, and a range that cuts that
// partition reads the part it covers, no more.
func TestLookupWalkOldestPartition(t *testing.T) {
	url := walkData(t, 0)
	r := openReader(t, url)
	ctx := context.Background()
	end := walkDay0.AddDate(0, 0, 39).Add(12 * time.Hour)
	for _, c := range []struct {
		start time.Time
		want  []string
	}{
		{time.Time{}, []string{"r00"}},
		{walkDay0, []string{"r00"}},
		{walkDay0.Add(3 * time.Hour), []string{"r00"}},
		{walkDay0.Add(6 * time.Hour), []string{"r00"}},
		{walkDay0.Add(7 * time.Hour), nil},
	} {
		got, err := r.LookupEvents(ctx, sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Rare"}},
			Start: c.start, End: end, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("from %s: got %v, want %v", c.start.Format(time.DateTime), ids(got), c.want)
		}
	}
}

// TestLookupWalkPartitionDropped: a partition dropped while a lookup walks
// (after the reader read the partition set, before the statement naming
// it ran) leaves the lookup to read the rest of the range without it, on a
// connection that had the statement prepared and on one that had not.
func TestLookupWalkPartitionDropped(t *testing.T) {
	url := walkData(t, 2, 9, 14, 30)
	owner := ownerConn(t, url)
	ctx := context.Background()
	q := sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Rare"}},
		End: walkDay0.AddDate(0, 0, 39).Add(12 * time.Hour), Limit: 50}
	// The hour, the day and the cut partition 38 are read by statements
	// planned for their bounds; then partitions 37 to 34 in one batch, 33
	// to 18 in the next, the rest in the third.
	dropOnBatch := func(r *sink.Reader, batch int, day int) {
		n := 0
		sink.SetBeforeBatch(r, func() {
			if n++; n == batch {
				name := "cloudtrail_events_" + walkDay0.AddDate(0, 0, day).Format("20060102")
				if _, err := owner.Exec(ctx, "DROP TABLE "+name); err != nil {
					t.Error(err)
				}
			}
		})
	}

	warm := oneConnReader(t, url)
	got, err := warm.LookupEvents(ctx, q)
	if err != nil || !slices.Equal(ids(got), []string{"r30", "r14", "r09", "r02"}) {
		t.Fatalf("before any drop: %v %v", ids(got), err)
	}
	dropOnBatch(warm, 3, 9)
	got, err = warm.LookupEvents(ctx, q)
	if err != nil || !slices.Equal(ids(got), []string{"r30", "r14", "r02"}) {
		t.Errorf("partition 9 dropped before the batch that reads it, statements prepared: %v %v, want [r30 r14 r02]", ids(got), err)
	}
	sink.SetBeforeBatch(warm, nil)
	got, err = warm.LookupEvents(ctx, q)
	if err != nil || !slices.Equal(ids(got), []string{"r30", "r14", "r02"}) {
		t.Errorf("the lookup after: %v %v, want [r30 r14 r02]", ids(got), err)
	}

	cold := openReader(t, url)
	dropOnBatch(cold, 2, 30)
	got, err = cold.LookupEvents(ctx, q)
	if err != nil || !slices.Equal(ids(got), []string{"r14", "r02"}) {
		t.Errorf("partition 30 dropped, statements not prepared: %v %v, want [r14 r02]", ids(got), err)
	}
}

// TestLookupWalkEventsArrive: events stored while a client pages, older
// than its position, in a partition read already or in a new one older
// than any, appear on the later pages; events newer than its position do
// not; none repeats.
func TestLookupWalkEventsArrive(t *testing.T) {
	url := walkData(t)
	r := openReader(t, url)
	ctx := context.Background()
	end := walkDay0.AddDate(0, 0, 39).Add(12 * time.Hour)
	q := sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Common"}}, End: end, Limit: 7}
	want, err := sink.LookupByWindows(ctx, r, sink.LookupQuery{Attributes: q.Attributes, End: end, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Concat(pageAll(t, q, func(q sink.LookupQuery) ([]sink.LookupEvent, error) { return r.LookupEvents(ctx, q) },
		func(page int) {
			if page == 2 {
				// Newer than the position: not on a later page. Older: on one.
				addRecords(t, url,
					rec("new-newer", end.Add(-time.Minute), "Common", nil),
					rec("new-older", walkDay0.AddDate(0, 0, 20).Add(3*time.Hour), "Common", nil),
					rec("new-partition", walkDay0.AddDate(0, 0, -5), "Common", nil))
			}
		})...)
	var wantIDs []string
	for _, e := range want {
		if e.EventTime.Before(walkDay0.AddDate(0, 0, 20).Add(3*time.Hour)) && !slices.Contains(wantIDs, "new-older") {
			wantIDs = append(wantIDs, "new-older")
		}
		wantIDs = append(wantIDs, e.EventID)
	}
	wantIDs = append(wantIDs, "new-partition")
	if !slices.Equal(got, wantIDs) {
		t.Errorf("got %v\nwant %v", got, wantIDs)
	}
}

// TestLookupWalkGenericPlans: the statements of whole partitions are
// planned once per connection, generic, and every later page reuses the
// plans.
func TestLookupWalkGenericPlans(t *testing.T) {
	url := walkData(t, 2)
	ctx := context.Background()
	r := oneConnReader(t, url)
	q := sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Rare"}},
		End: walkDay0.AddDate(0, 0, 39).Add(12 * time.Hour), Limit: 50}
	for range 3 {
		if got, err := r.LookupEvents(ctx, q); err != nil || !slices.Equal(ids(got), []string{"r02"}) {
			t.Fatalf("%v %v", ids(got), err)
		}
	}
	n, generic, custom, err := sink.PartitionPlans(r)
	if err != nil {
		t.Fatal(err)
	}
	// Partitions 37 to 0 are whole: 38 statements, run three times each.
	if n != 38 || generic != 3*38 || custom != 0 {
		t.Errorf("%d statements of whole partitions, planned %d times generic, %d custom; want 38, 114, 0", n, generic, custom)
	}
}

// TestExplainLookupPartition: the plans of a whole partition's statement,
// generic (the parameter stays a parameter), planned on the first run; the
// session is left planning for bounds again.
func TestExplainLookupPartition(t *testing.T) {
	url := walkData(t, 2)
	ctx := context.Background()
	r := oneConnReader(t, url)
	q := sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Rare"}}, Limit: 50}
	first, then, err := r.ExplainLookupPartition(ctx, q, walkDay0.AddDate(0, 0, 2).Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, plan := range []string{first, then} {
		if !strings.Contains(plan, "cloudtrail_events_20260103") || !strings.Contains(plan, "event_name = $1") ||
			!strings.Contains(plan, "rows=1 ") {
			t.Errorf("not the generic plan of partition 2's statement, finding its event:\n%s", plan)
		}
	}
	if mode, err := sink.PlanCacheMode(r); err != nil || mode != "force_custom_plan" {
		t.Errorf("plan_cache_mode after: %q %v", mode, err)
	}
	if _, _, err := r.ExplainLookupPartition(ctx, q, walkDay0.AddDate(0, 0, -3)); err == nil {
		t.Error("a time no partition holds: no error")
	}
}

// TestLookupWalkDefaultPartition: with a default partition (of no bounds
// to name), a lookup reads its range in windows, and finds the events the
// default partition holds.
func TestLookupWalkDefaultPartition(t *testing.T) {
	url := walkData(t, 2, 30)
	owner := ownerConn(t, url)
	ctx := context.Background()
	if _, err := owner.Exec(ctx, `CREATE TABLE cloudtrail_events_default PARTITION OF cloudtrail_events DEFAULT`); err != nil {
		t.Fatal(err)
	}
	// Stored in a day partition of its own, then moved to the default
	// partition.
	addRecords(t, url, rec("r-default", walkDay0.AddDate(0, 0, 45), "Rare", nil))
	day := "cloudtrail_events_" + walkDay0.AddDate(0, 0, 45).Format("20060102")
	for _, stmt := range []string{"ALTER TABLE cloudtrail_events DETACH PARTITION " + day,
		"INSERT INTO cloudtrail_events SELECT * FROM " + day, "DROP TABLE " + day} {
		if _, err := owner.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	var inDefault bool
	if err := owner.QueryRow(ctx, `SELECT EXISTS (SELECT FROM cloudtrail_events_default WHERE event_id = 'r-default')`).Scan(&inDefault); err != nil || !inDefault {
		t.Fatalf("the event is not in the default partition: %v %v", inDefault, err)
	}
	r := openReader(t, url)
	got, err := r.LookupEvents(ctx, sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Rare"}},
		End: walkDay0.AddDate(0, 0, 50), Limit: 50})
	if err != nil || !slices.Equal(ids(got), []string{"r-default", "r30", "r02"}) {
		t.Errorf("got %v %v, want [r-default r30 r02]", ids(got), err)
	}
}

// TestLookupWalkOpenEndedPartitions: partitions from MINVALUE and to
// MAXVALUE (made by hand; pgtrail makes day partitions only) have no
// bound to read a whole day by: a lookup reads its range in windows, finds
// the events they hold, and starts at no oldest partition.
func TestLookupWalkOpenEndedPartitions(t *testing.T) {
	url := walkData(t, 2, 30)
	owner := ownerConn(t, url)
	ctx := context.Background()
	for _, stmt := range []string{
		`CREATE TABLE cloudtrail_events_before PARTITION OF cloudtrail_events FOR VALUES FROM (MINVALUE) TO ('` + walkDay0.Format(time.RFC3339) + `')`,
		`CREATE TABLE cloudtrail_events_after PARTITION OF cloudtrail_events FOR VALUES FROM ('` + walkDay0.AddDate(0, 0, 40).Format(time.RFC3339) + `') TO (MAXVALUE)`,
	} {
		if _, err := owner.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	addRecords(t, url, rec("r-before", walkDay0.AddDate(-3, 0, 0), "Rare", nil),
		rec("r-after", walkDay0.AddDate(0, 0, 45), "Rare", nil))
	r := openReader(t, url)
	q := sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Rare"}}, End: walkDay0.AddDate(0, 0, 50), Limit: 50}
	got, err := r.LookupEvents(ctx, q)
	if err != nil || !slices.Equal(ids(got), []string{"r-after", "r30", "r02", "r-before"}) {
		t.Errorf("got %v %v, want [r-after r30 r02 r-before]", ids(got), err)
	}
	want, err := sink.LookupByWindows(ctx, r, q)
	if err != nil || !slices.Equal(ids(got), ids(want)) {
		t.Errorf("by windows: %v %v", ids(want), err)
	}
}
