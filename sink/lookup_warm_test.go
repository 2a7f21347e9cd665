package sink_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// TestReaderWarm: a reader asked to warm its connections holds, once Warm
// returns, the catalog entries of every partition's indexes, which a
// reader that does not warm reads only as lookups plan on them; its
// lookups answer as the other's do.
func TestReaderWarm(t *testing.T) {
	url := walkData(t, 2, 30)
	ctx := context.Background()
	var indexes int
	if err := ownerConn(t, url).QueryRow(ctx, `
SELECT count(*) FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indrelid
WHERE i.inhparent = 'cloudtrail_events'::regclass`).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if indexes < 40 {
		t.Fatalf("%d indexes on the partitions: the test proves nothing", indexes)
	}
	open := func(warm int32) *sink.Reader {
		r, err := sink.OpenReader(ctx, sink.Config{URL: url, MaxConns: 3, WarmConns: warm})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		if err := r.Warm(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	warm, cold := open(2), open(0)
	if n := sink.PoolConns(warm); n != 2 {
		t.Errorf("warmed: the pool holds %d connections, want the 2 asked for", n)
	}
	if n, err := sink.IndexEntries(warm); err != nil || n < indexes {
		t.Errorf("warmed: the session holds %d index entries (%v), want at least the partitions' %d", n, err, indexes)
	}
	if n, err := sink.IndexEntries(cold); err != nil || n >= indexes {
		t.Errorf("not warmed: the session holds %d index entries (%v), want fewer than the partitions' %d", n, err, indexes)
	}
	q := sink.LookupQuery{Attributes: []sink.LookupAttribute{{"EventName", "Rare"}},
		End: walkDay0.AddDate(0, 0, 39).Add(12 * time.Hour), Limit: 50}
	for _, r := range []*sink.Reader{warm, cold} {
		if got, err := r.LookupEvents(ctx, q); err != nil || !slices.Equal(ids(got), []string{"r30", "r02"}) {
			t.Errorf("got %v %v, want [r30 r02]", ids(got), err)
		}
	}
}
