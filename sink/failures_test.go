package sink_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/internal/testdb"
	"github.com/pgtrail/pgtrail/sink"
)

// TestRecordFailureKeepsTheLastError: the last error of each object is
// stored, counted and read back with whether the ledger holds the object.
func TestRecordFailureKeepsTheLastError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg, url := testdb.Open(t)

	if err := pg.RecordFailure(ctx, "bucket", "a.json.gz", "m1", errors.New("first"), false); err != nil {
		t.Fatal(err)
	}
	if err := pg.RecordFailure(ctx, "bucket", "a.json.gz", "m2", errors.New("gzip: invalid header"), true); err != nil {
		t.Fatal(err)
	}
	if err := pg.RecordFailure(ctx, "bucket", "b.json.gz", "m2", errors.New("later stored"), false); err != nil {
		t.Fatal(err)
	}
	// b is committed afterwards.
	if _, err := write(ctx, pg, []*testObject{{Bucket: "bucket", Key: "b.json.gz", MessageID: "m3",
		Entries: []cloudtrail.Entry{event("e1", time.Now().UTC(), "b.json.gz")}}}); err != nil {
		t.Fatal(err)
	}

	a, b, c := sink.ObjectKey{Bucket: "bucket", Key: "a.json.gz"}, sink.ObjectKey{Bucket: "bucket", Key: "b.json.gz"},
		sink.ObjectKey{Bucket: "bucket", Key: "c.json.gz"}
	got, err := sink.ReadFailures(ctx, url, []sink.ObjectKey{a, b, c}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f := got[a]; f.Error != "gzip: invalid header" || !f.Permanent || f.Failures != 2 || f.Committed || f.FailedAt.IsZero() {
		t.Errorf("a: %+v, want the second error, permanent, 2 failures, not committed", f)
	}
	if f := got[b]; f.Error != "later stored" || !f.Committed {
		t.Errorf("b: %+v, want its error and committed", f)
	}
	if f := got[c]; f.Error != "" || f.Committed || f.Failures != 0 {
		t.Errorf("c: %+v, want nothing known", f)
	}
}

// TestEveryEventColumnHasAComment: \d+ cloudtrail_events describes every
// column, as docs/analysts.md says.
func TestEveryEventColumnHasAComment(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	rows, err := pg.Pool().Query(context.Background(), `
		SELECT a.attname FROM pg_attribute a
		WHERE a.attrelid = 'cloudtrail_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped
		  AND coalesce(col_description(a.attrelid, a.attnum), '') = ''`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		t.Errorf("cloudtrail_events.%s has no comment", name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pg, `SELECT count(*) FROM pg_attribute WHERE attrelid = 'cloudtrail_events'::regclass AND attnum > 0 AND NOT attisdropped`); n != 35 {
		t.Errorf("cloudtrail_events has %d columns, the test expected 35", n)
	}
}

// TestWriterRecordsFailures: the workers' role may record failures, twice
// for the same object; the reader may read them.
func TestWriterRecordsFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.New(t)
	owner := openAs(t, dbURL, sink.Config{})
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	pg := openAs(t, loginRole(t, dbURL, sink.DefaultWriterRole), sink.Config{MaxConns: 2})
	for range 2 {
		if err := pg.RecordFailure(ctx, "bucket", "k", "m", errors.New("boom"), true); err != nil {
			t.Fatalf("RecordFailure as the writer: %v", err)
		}
	}
	got, err := sink.ReadFailures(ctx, loginRole(t, dbURL, sink.DefaultReaderRole),
		[]sink.ObjectKey{{Bucket: "bucket", Key: "k"}}, 5*time.Second)
	if err != nil {
		t.Fatalf("ReadFailures as the reader: %v", err)
	}
	if f := got[sink.ObjectKey{Bucket: "bucket", Key: "k"}]; f.Error != "boom" || f.Failures != 2 {
		t.Errorf("got %+v, want boom twice", f)
	}
}
