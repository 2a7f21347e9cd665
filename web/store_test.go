package web_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// field reads a string at a dotted path of a record.
func field(rec map[string]any, path string) string {
	var v any = rec
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

func accountOf(rec map[string]any) string {
	if a := field(rec, "recipientAccountId"); a != "" {
		return a
	}
	return field(rec, "userIdentity.accountId")
}

// commonest is the value of f that the most events have (ties: the
// smallest), so that filters are built from the data.
func commonest(events []stored, f func(stored) string) string {
	n := map[string]int{}
	for _, e := range events {
		if v := f(e); v != "" {
			n[v]++
		}
	}
	var best string
	for v, c := range n {
		if c > n[best] || (c == n[best] && v < best) {
			best = v
		}
	}
	return best
}

// testHistoryQueries checks sink.Reader's history queries over the corpus
// against the same selection made here from the records: each filter and
// combinations of them, paging older then newer, the count, the activity.
func testHistoryQueries(t *testing.T, b *bundle) {
	ctx := context.Background()
	all := b.allEvents(t)
	from, to := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	account := commonest(all, func(e stored) string { return accountOf(e.Record) })
	region := commonest(all, func(e stored) string { return field(e.Record, "awsRegion") })
	ip := commonest(all, func(e stored) string { return field(e.Record, "sourceIPAddress") })
	code := commonest(all, func(e stored) string { return field(e.Record, "errorCode") })
	user, _ := busiestUser(all)
	source := commonest(all, func(e stored) string {
		if e.User != user || field(e.Record, "errorCode") == "" {
			return ""
		}
		return field(e.Record, "eventSource")
	})
	// A window in the middle of the data, bounds on events.
	mid, late := all[len(all)*2/3].Time, all[len(all)/3].Time

	cases := []struct {
		name string
		f    sink.HistoryFilter
		want func(stored) bool
	}{
		{"all", sink.HistoryFilter{}, func(stored) bool { return true }},
		{"account " + account, sink.HistoryFilter{Account: account}, func(e stored) bool { return accountOf(e.Record) == account }},
		{"region " + region, sink.HistoryFilter{Region: region}, func(e stored) bool { return field(e.Record, "awsRegion") == region }},
		{"ip " + ip, sink.HistoryFilter{SourceIP: ip}, func(e stored) bool { return field(e.Record, "sourceIPAddress") == ip }},
		{"error " + code, sink.HistoryFilter{ErrorCode: code}, func(e stored) bool { return field(e.Record, "errorCode") == code }},
		{"any error", sink.HistoryFilter{ErrorCode: sink.AnyError}, func(e stored) bool { return field(e.Record, "errorCode") != "" }},
		{"name contains describe", sink.HistoryFilter{NameContains: "describe"}, func(e stored) bool {
			return strings.Contains(strings.ToLower(field(e.Record, "eventName")), "describe")
		}},
		{"name contains a wildcard", sink.HistoryFilter{NameContains: "%_"}, func(e stored) bool {
			return strings.Contains(field(e.Record, "eventName"), "%_")
		}},
		{"user and source and any error", sink.HistoryFilter{ErrorCode: sink.AnyError, Attributes: []sink.LookupAttribute{
			{Key: sink.AttrUsername, Value: user}, {Key: sink.AttrEventSource, Value: source}}}, func(e stored) bool {
			return e.User == user && field(e.Record, "eventSource") == source && field(e.Record, "errorCode") != ""
		}},
		{"account and region in a window", sink.HistoryFilter{Account: account, Region: region, Start: mid, End: late}, func(e stored) bool {
			return accountOf(e.Record) == account && field(e.Record, "awsRegion") == region && !e.Time.Before(mid) && !e.Time.After(late)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			if f.Start.IsZero() {
				f.Start, f.End = from, to
			}
			var want []string
			var errs int64
			for _, e := range all {
				if c.want(e) {
					want = append(want, e.ID)
					if field(e.Record, "errorCode") != "" {
						errs++
					}
				}
			}
			if c.name != "name contains a wildcard" && len(want) == 0 {
				t.Fatal("the case selects no event: the test proves nothing")
			}
			// Older, page by page.
			var got []string
			var pages [][]sink.HistoryEvent
			q := sink.HistoryQuery{HistoryFilter: f, Limit: 13}
			for {
				p, err := b.reader.HistoryEvents(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(p) == 0 {
					break
				}
				pages = append(pages, p)
				for _, e := range p {
					got = append(got, e.ID)
				}
				last := p[len(p)-1]
				q.Older = &sink.LookupCursor{Time: last.Time, ID: last.ID}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d events %v, want %d %v", len(got), head(got), len(want), head(want))
			}
			// Newer, from the last page back to the first.
			for i := len(pages) - 2; i >= 0; i-- {
				first := pages[i+1][0]
				p, err := b.reader.HistoryEvents(ctx, sink.HistoryQuery{HistoryFilter: f, Limit: 13, Newer: &sink.LookupCursor{Time: first.Time, ID: first.ID}})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ids(p), ids(pages[i])) {
					t.Fatalf("newer than page %d: %v, want %v", i+1, ids(p), ids(pages[i]))
				}
			}
			n, capped, err := b.reader.CountHistory(ctx, f, 1_000_000)
			if err != nil || n != int64(len(want)) || capped {
				t.Errorf("count %d (capped %v, %v), want %d", n, capped, err, len(want))
			}
			if len(want) > 3 {
				if n, capped, err := b.reader.CountHistory(ctx, f, 3); err != nil || n != 3 || !capped {
					t.Errorf("count capped at 3: %d (capped %v, %v), want 3, capped", n, capped, err)
				}
			}
			act, err := b.reader.HistoryActivity(ctx, f, 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			var evs, es int64
			for _, a := range act {
				evs, es = evs+a.Events, es+a.Errors
			}
			if evs != int64(len(want)) || es != errs {
				t.Errorf("activity sums to %d events, %d errors; want %d, %d", evs, es, len(want), errs)
			}
		})
	}

	t.Run("record", func(t *testing.T) {
		e := all[0]
		rec, err := b.reader.HistoryRecord(ctx, e.ID, e.Time)
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for _, f := range rec.Fields {
			fields[f.Name] = f.Value
		}
		if fields["event_id"] != e.ID || fields["event_name"] != field(e.Record, "eventName") || fields["lookup_username"] != e.User {
			t.Errorf("fields %v, want those of %s", fields, e.ID)
		}
		if _, err := b.reader.HistoryRecord(ctx, e.ID, e.Time.Add(time.Second)); err != sink.ErrNotFound {
			t.Errorf("another time: %v, want ErrNotFound", err)
		}
	})

	t.Run("bad attribute", func(t *testing.T) {
		_, err := b.reader.HistoryEvents(ctx, sink.HistoryQuery{HistoryFilter: sink.HistoryFilter{Start: from, End: to,
			Attributes: []sink.LookupAttribute{{Key: sink.AttrReadOnly, Value: "maybe"}}}, Limit: 5})
		if err == nil {
			t.Error("ReadOnly=maybe accepted")
		}
	})
}

func ids(p []sink.HistoryEvent) []string {
	var out []string
	for _, e := range p {
		out = append(out, e.ID)
	}
	return out
}

func head(s []string) string {
	if len(s) > 5 {
		return fmt.Sprint(s[:5], "…")
	}
	return fmt.Sprint(s)
}
