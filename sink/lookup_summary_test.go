package sink_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// summarize summarizes every closed day of the database at url, and
// returns how many days it summarized.
func summarize(t *testing.T, url string) int {
	t.Helper()
	pg, err := sink.Open(context.Background(), sink.Config{URL: url}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	n, err := pg.SummarizeLookupDays(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// walkStats records the partitions each page's walk read and skipped.
type walkStats struct{ walked, skipped int }

func recordWalks(r *sink.Reader) *walkStats {
	s := &walkStats{}
	sink.SetAfterWalk(r, func(walked, skipped int) { s.walked, s.skipped = walked, skipped })
	return s
}

// TestLookupSummariesSkipDays: with every closed day summarized, a lookup
// of a rare value reads the partitions that hold it, not the others, and
// every page is the one that reading every window gives.
func TestLookupSummariesSkipDays(t *testing.T) {
	t.Parallel()
	url := walkData(t, 2, 9, 10, 31)
	if n := summarize(t, url); n != 40 {
		t.Fatalf("summarized %d days, want 40", n)
	}
	if n := summarize(t, url); n != 0 {
		t.Fatalf("summarized %d days again, want none", n)
	}
	r := openReader(t, url)
	stats := recordWalks(r)
	ctx := context.Background()
	end := walkDay0.AddDate(0, 0, 39).Add(12 * time.Hour)
	for _, c := range []struct {
		attrs []sink.LookupAttribute
		// rare: the walk must skip most partitions; a busy value's walk
		// fills its page from its first batch and asks nothing.
		rare bool
	}{
		{[]sink.LookupAttribute{{"EventId", "r09"}}, true},
		{[]sink.LookupAttribute{{"EventId", "no-such-event"}}, true},
		{[]sink.LookupAttribute{{"EventName", "Rare"}}, true},
		{[]sink.LookupAttribute{{"Username", "alice"}, {"EventName", "Rare"}}, true},
		{[]sink.LookupAttribute{{"Username", "nobody"}}, true},
		{[]sink.LookupAttribute{{"AccessKeyId", "AKIANOBODY"}}, true},
		{[]sink.LookupAttribute{{"EventSource", "s3.amazonaws.com"}}, true},
		{[]sink.LookupAttribute{{"ResourceName", "arn:aws:s3:::nothing"}}, true},
		{[]sink.LookupAttribute{{"EventName", "Common"}}, false},
		{[]sink.LookupAttribute{{"AccessKeyId", "AKIAALICE"}}, false},
		{[]sink.LookupAttribute{{"ReadOnly", "true"}}, false},
	} {
		for _, limit := range []int{2, 50} {
			q := sink.LookupQuery{Attributes: c.attrs, End: end, Limit: limit}
			name := fmt.Sprintf("%v by %d", c.attrs, limit)
			var skipped int
			got := pageAll(t, q, func(q sink.LookupQuery) ([]sink.LookupEvent, error) {
				page, err := r.LookupEvents(ctx, q)
				skipped += stats.skipped
				return page, err
			}, nil)
			want := pageAll(t, q, func(q sink.LookupQuery) ([]sink.LookupEvent, error) { return sink.LookupByWindows(ctx, r, q) }, nil)
			if !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("%s:\n got %v\nwant %v", name, got, want)
			}
			// The newest hour, day and the cut partition are read by their
			// own statements, then a batch of 4: the remaining 34 are
			// the summaries' to rule out, but for the days that hold the
			// value and a rare false match.
			if c.rare && limit == 50 && skipped < 28 {
				t.Errorf("%s: %d partitions skipped, want at least 28", name, skipped)
			}
			if !c.rare && skipped != 0 {
				t.Errorf("%s: %d partitions skipped, want none", name, skipped)
			}
		}
	}
}

// TestLookupSummaryForgottenByLateEvent: an event stored in a summarized
// day deletes that day's summary, in the storing transaction, so that the
// next lookup reads the day; the next summarizing makes it again.
func TestLookupSummaryForgottenByLateEvent(t *testing.T) {
	t.Parallel()
	url := walkData(t, 2)
	if n := summarize(t, url); n != 40 {
		t.Fatalf("summarized %d days, want 40", n)
	}
	r := openReader(t, url)
	stats := recordWalks(r)
	ctx := context.Background()
	find := func(attr sink.LookupAttribute) []string {
		t.Helper()
		got, err := r.LookupEvents(ctx, sink.LookupQuery{Attributes: []sink.LookupAttribute{attr},
			End: walkDay0.AddDate(0, 0, 40), Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		return ids(got)
	}
	late := rec("late20", walkDay0.AddDate(0, 0, 20).Add(8*time.Hour), "LateCall",
		map[string]any{"userIdentity": map[string]any{"type": "IAMUser", "userName": "mallory", "accessKeyId": "AKIALATE"}})
	if got := find(sink.LookupAttribute{Key: "EventId", Value: "late20"}); got != nil || stats.skipped < 30 {
		t.Fatalf("before: %v, %d skipped", got, stats.skipped)
	}
	addRecords(t, url, late)
	owner := ownerConn(t, url)
	var days []time.Time
	rows, err := owner.Query(ctx, `SELECT day FROM pgtrail_lookup_summaries WHERE day BETWEEN $1 AND $2`,
		walkDay0.AddDate(0, 0, 19), walkDay0.AddDate(0, 0, 21))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d time.Time
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		days = append(days, d)
	}
	if len(days) != 2 || days[0].Equal(walkDay0.AddDate(0, 0, 20)) || days[1].Equal(walkDay0.AddDate(0, 0, 20)) {
		t.Errorf("summaries of days 19 to 21 after a late event on day 20: %v; want 19 and 21", days)
	}
	for _, attr := range []sink.LookupAttribute{{"EventId", "late20"}, {"EventName", "LateCall"},
		{"Username", "mallory"}, {"AccessKeyId", "AKIALATE"}} {
		if got := find(attr); !slices.Equal(got, []string{"late20"}) {
			t.Errorf("%v after the late event: %v", attr, got)
		}
	}
	if n := summarize(t, url); n != 1 {
		t.Fatalf("summarized %d days again, want 1", n)
	}
	if got := find(sink.LookupAttribute{Key: "EventId", Value: "late20"}); !slices.Equal(got, []string{"late20"}) {
		t.Errorf("summarized again: %v", got)
	}
}

// TestLookupSummaryWaitsForWriters: summarizing a day waits for the
// transactions storing into it (day 20, older than what a walk reads
// before it asks the summaries), so that the summary holds what they
// stored; a summary made without waiting would miss it for good (the
// trigger fired before the summary existed).
func TestLookupSummaryWaitsForWriters(t *testing.T) {
	t.Parallel()
	url := walkData(t)
	ctx := context.Background()
	owner := ownerConn(t, url)
	tx, err := owner.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cloudtrail_events (event_id, event_time, event_name, record, s3_bucket, s3_key)
        VALUES ('inflight', $1, 'InFlight', '{}', 'b', 'k')`, walkDay0.AddDate(0, 0, 20).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() {
		pg, err := sink.Open(ctx, sink.Config{URL: url}, zaptest.NewLogger(t))
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		defer pg.Close()
		n, err := pg.SummarizeLookupDays(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	select {
	case n := <-done:
		t.Fatalf("summarized %d days while a transaction was storing into day 20", n)
	case <-time.After(2 * time.Second):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := <-done; n != 40 {
		t.Fatalf("summarized %d days, want 40", n)
	}
	r := openReader(t, url)
	got, err := r.LookupEvents(ctx, sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "InFlight"}},
		End: walkDay0.AddDate(0, 0, 40), Limit: 50})
	if err != nil || !slices.Equal(ids(got), []string{"inflight"}) {
		t.Errorf("the event stored while summarizing: %v, %v", ids(got), err)
	}
}

// TestLookupSummaryOfADroppedPartition: a partition dropped and made again
// is not the one its summary was made of: lookups read it.
func TestLookupSummaryOfADroppedPartition(t *testing.T) {
	t.Parallel()
	url := walkData(t, 9)
	if n := summarize(t, url); n != 40 {
		t.Fatalf("summarized %d days, want 40", n)
	}
	ctx := context.Background()
	owner := ownerConn(t, url)
	if _, err := owner.Exec(ctx, `DROP TABLE cloudtrail_events_`+walkDay0.AddDate(0, 0, 9).Format("20060102")); err != nil {
		t.Fatal(err)
	}
	addRecords(t, url, rec("again09", walkDay0.AddDate(0, 0, 9).Add(7*time.Hour), "Again", nil))
	r := openReader(t, url)
	got, err := r.LookupEvents(ctx, sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Again"}},
		End: walkDay0.AddDate(0, 0, 40), Limit: 50})
	if err != nil || !slices.Equal(ids(got), []string{"again09"}) {
		t.Errorf("the day made again: %v, %v", ids(got), err)
	}
	// Summarizing clears the dropped partition's summary and summarizes the
	// new one.
	if n := summarize(t, url); n != 1 {
		t.Errorf("summarized %d days, want the one made again", n)
	}
	if n := count(t, openAs(t, url, sink.Config{}), `SELECT count(*) FROM pgtrail_lookup_summaries`); n != 40 {
		t.Errorf("%d summaries, want 40", n)
	}
}

// TestLookupSummaryFilter: the filter never lacks a value its day holds
// (no false negative, over thousands of distinct values), and lacks
// almost every value the day does not hold.
func TestLookupSummaryFilter(t *testing.T) {
	t.Parallel()
	url := pgtest.New(t)
	addRecords(t, url)
	owner := ownerConn(t, url)
	ctx := context.Background()
	day := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	const n = 5000
	if _, err := owner.Exec(ctx, `
SELECT pgtrail_ensure_partition($1::date);
`, day); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, `
INSERT INTO cloudtrail_events (event_id, event_time, event_name, event_source, user_identity_type, user_identity_arn,
    user_identity_access_key_id, management_event, resources, record, s3_bucket, s3_key)
SELECT 'id-' || g, $1::timestamptz + g * interval '1 second', 'Api' || (g % 97), 'svc' || (g % 13) || '.amazonaws.com',
    'AssumedRole', 'arn:aws:sts::1:assumed-role/role/session' || (g % 701), 'AKIA' || g, true,
    jsonb_build_array(jsonb_build_object('type', 'AWS::S3::Bucket', 'ARN', 'arn:aws:s3:::bucket' || g)), '{}', 'b', 'k'
FROM generate_series(1, $2) g`, day, n); err != nil {
		t.Fatal(err)
	}
	if got := summarize(t, url); got != 1 {
		t.Fatalf("summarized %d days, want 1", got)
	}
	var present, absent int
	if err := owner.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE EXISTS (SELECT FROM pgtrail_lookup_summaries_lacking(ARRAY['i:id-' || g, 'e:Api' || (g % 97),
           's:svc' || (g % 13) || '.amazonaws.com', 'u:session' || (g % 701), 'k:AKIA' || g,
           't:AWS::S3::Bucket', 'n:arn:aws:s3:::bucket' || g]))),
       count(*) FILTER (WHERE EXISTS (SELECT FROM pgtrail_lookup_summaries_lacking(ARRAY['i:id-x' || g])))
FROM generate_series(1, $1) g`, n).Scan(&present, &absent); err != nil {
		t.Fatal(err)
	}
	if present != 0 {
		t.Errorf("the summary lacks the values of %d of its %d events", present, n)
	}
	// About ten bits a value, seven set by each: 1 % false matches; 3 %
	// leaves room for chance.
	if absent < n*97/100 {
		t.Errorf("the summary lacks %d of %d values its day does not hold, want at least 97 %%", absent, n)
	}
}

// TestLookupSummaryPrivileges: the writer may summarize, not change a
// summary nor the trigger that forgets one; the reader may read them only.
func TestLookupSummaryPrivileges(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.New(t)
	addRecords(t, dbURL, rec("e1", walkDay0, "Call", nil))
	if n := summarize(t, dbURL); n != 1 {
		t.Fatalf("summarized %d days, want 1", n)
	}
	part := "cloudtrail_events_" + walkDay0.Format("20060102")
	w := connect(t, loginRole(t, dbURL, sink.DefaultWriterRole))
	allowed(t, w, `SELECT pgtrail_summarize_lookup_day()`)
	for _, sql := range []string{
		`INSERT INTO pgtrail_lookup_summaries (relid, day, seed, keys, bits) VALUES (1, '2026-01-01', 0, 0, '\x00')`,
		`UPDATE pgtrail_lookup_summaries SET bits = bits`,
		`DELETE FROM pgtrail_lookup_summaries`,
		`TRUNCATE pgtrail_lookup_summaries`,
		`DROP TRIGGER pgtrail_lookup_summary ON ` + part,
		`ALTER TABLE ` + part + ` DISABLE TRIGGER pgtrail_lookup_summary`,
		`SELECT pgtrail_forget_lookup_summary()`,
	} {
		denied(t, w, sql)
	}
	rd := connect(t, loginRole(t, dbURL, sink.DefaultReaderRole))
	allowed(t, rd, `SELECT count(*) FROM pgtrail_lookup_summaries`)
	denied(t, rd, `SELECT pgtrail_summarize_lookup_day()`)
	denied(t, rd, `DELETE FROM pgtrail_lookup_summaries`)
	if n := count(t, openAs(t, dbURL, sink.Config{}), `SELECT count(*) FROM pgtrail_lookup_summaries`); n != 1 {
		t.Errorf("%d summaries after the attempts, want 1", n)
	}
}

// TestLookupSummaryStatus: pgtrail status counts the closed days and those
// summarized.
func TestLookupSummaryStatus(t *testing.T) {
	t.Parallel()
	url := pgtest.New(t)
	now := time.Now().UTC()
	addRecords(t, url, rec("old1", now.AddDate(0, 0, -5), "Call", nil), rec("old2", now.AddDate(0, 0, -3), "Call", nil),
		rec("yesterday", now.AddDate(0, 0, -1), "Call", nil), rec("today", now, "Call", nil))
	read := func() sink.LookupSummaryStatus {
		t.Helper()
		st, err := sink.ReadStatus(context.Background(), url, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if st.Lookup == nil {
			t.Fatal("no lookup summaries in the status")
		}
		return *st.Lookup
	}
	if got := read(); got != (sink.LookupSummaryStatus{Closed: 2}) {
		t.Errorf("before summarizing: %+v, want 2 closed, none summarized", got)
	}
	if n := summarize(t, url); n != 2 {
		t.Fatalf("summarized %d days, want 2", n)
	}
	if got := read(); got != (sink.LookupSummaryStatus{Closed: 2, Summarized: 2}) {
		t.Errorf("after: %+v, want 2 of 2", got)
	}
}
