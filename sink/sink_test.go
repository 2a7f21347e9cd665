package sink_test

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/internal/testdb"
	"github.com/pgtrail/pgtrail/sink"
)

// testObject is an object as a test hands it to write: buffered (Entries)
// or, when Stream is set, streamed.
type testObject struct {
	Bucket, Key string
	Size        int64
	MessageID   string
	Entries     []cloudtrail.Entry
	Stream      sink.EntrySource
}

// write hands objs to pg the two ways the worker does: the buffered ones
// together in one WriteBuffered, then each streamed one alone in
// WriteStreamed. The results are in the order of objs.
func write(ctx context.Context, pg *sink.Postgres, objs []*testObject) ([]sink.WriteResult, error) {
	res := make([]sink.WriteResult, len(objs))
	var buffered []*sink.BufferedObject
	var at []int
	for i, o := range objs {
		head := sink.Object{Bucket: o.Bucket, Key: o.Key, Size: o.Size, MessageID: o.MessageID}
		if o.Stream != nil {
			continue
		}
		buffered = append(buffered, &sink.BufferedObject{Object: head, Entries: o.Entries})
		at = append(at, i)
	}
	if len(buffered) > 0 {
		r, err := pg.WriteBuffered(ctx, buffered)
		if err != nil {
			return nil, err
		}
		for k, i := range at {
			res[i] = r[k]
		}
	}
	for i, o := range objs {
		if o.Stream == nil {
			continue
		}
		head := sink.Object{Bucket: o.Bucket, Key: o.Key, Size: o.Size, MessageID: o.MessageID}
		r, err := pg.WriteStreamed(ctx, &sink.StreamedObject{Object: head, Entries: o.Stream})
		if err != nil {
			return nil, err
		}
		res[i] = r
	}
	return res, nil
}

// rows is an EntrySource over a slice.
type rows struct {
	items []cloudtrail.Entry
	err   error // returned after the items, instead of io.EOF, when set
}

func (r *rows) Next(row *cloudtrail.Entry) error {
	if len(r.items) == 0 {
		if r.err != nil {
			return r.err
		}
		return io.EOF
	}
	*row = r.items[0]
	r.items = r.items[1:]
	return nil
}

// setup is a sink on a fresh, migrated database.
func setup(t *testing.T) *sink.Postgres {
	t.Helper()
	pg, _ := testdb.Open(t)
	return pg
}

// setupTo is a sink on a fresh database migrated up to version last only,
// as an older pgtrail left it.
func setupTo(t *testing.T, last int) *sink.Postgres {
	t.Helper()
	pg, err := sink.Open(context.Background(), sink.Config{URL: pgtest.New(t)}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	if _, err := pg.MigrateTo(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	return pg
}

func event(id string, at time.Time, key string) cloudtrail.Entry {
	rec, _ := json.Marshal(map[string]any{"eventID": id, "eventTime": at.Format(time.RFC3339)})
	return cloudtrail.Entry{Event: cloudtrail.Event{
		EventID: id, EventTime: at, EventName: "GetObject", Record: rec,
		RequestParameters: json.RawMessage(`{"bucketName":"b"}`),
		S3Bucket:          "bucket", S3Key: key,
	}}
}

func count(t *testing.T, pg *sink.Postgres, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pg.Pool().QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.New(t)
	var wg sync.WaitGroup
	applied := make([][]int, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pg, err := sink.Open(ctx, sink.Config{URL: url, MaxConns: 2}, zaptest.NewLogger(t))
			if err != nil {
				errs[i] = err
				return
			}
			defer pg.Close()
			applied[i], errs[i] = pg.Migrate(ctx)
		}()
	}
	wg.Wait()
	total := 0
	for i := range 10 {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	pg, err := sink.Open(ctx, sink.Config{URL: url}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	want := count(t, pg, `SELECT count(*) FROM pgtrail_schema_migrations`)
	if want == 0 || total != want {
		t.Fatalf("ten concurrent migrations applied %d migrations in all, want %d (each once)", total, want)
	}
	again, err := pg.Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, %v; want nothing", again, err)
	}
}

func TestWriteDeduplicatesAndKeepsRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	day1 := time.Date(2024, 8, 1, 13, 0, 0, 0, time.UTC)
	day2 := time.Date(2019, 2, 28, 23, 59, 59, 0, time.UTC) // an old backfill

	obj := func(key string, items ...cloudtrail.Entry) *testObject {
		return &testObject{Bucket: "bucket", Key: key, Size: 100, MessageID: "m1", Stream: &rows{items: items}}
	}
	reject := cloudtrail.Entry{Reject: &cloudtrail.Reject{S3Bucket: "bucket", S3Key: "a", Index: 2, Reason: "eventTime missing", Raw: `{"x":1}`}}
	res, err := write(ctx, pg, []*testObject{
		obj("a", event("e1", day1, "a"), event("e2", day2, "a"), reject, event("e1", day1, "a")),
		obj("b", event("e2", day2, "b"), event("e3", day1, "b")),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sink.WriteResult{{Events: 3, Inserted: 2, Duplicates: 1, Rejected: 1}, {Events: 2, Inserted: 1, Duplicates: 1}}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("object %d: %+v, want %+v", i, res[i], want[i])
		}
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 3 {
		t.Errorf("%d events, want 3", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events_20190228`); n != 1 {
		t.Errorf("partition 20190228 holds %d events, want 1", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_rejects WHERE reason = 'eventTime missing'`); n != 1 {
		t.Errorf("%d rejects, want 1", n)
	}

	// Redelivery: the same object again adds nothing but a delivery.
	res, err = write(ctx, pg, []*testObject{obj("a", event("e1", day1, "a"), event("e2", day2, "a"), reject)})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Inserted != 0 || res[0].Duplicates != 2 {
		t.Errorf("redelivery: %+v, want 0 inserted, 2 duplicates", res[0])
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 3 {
		t.Errorf("after redelivery %d events, want 3", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_rejects`); n != 1 {
		t.Errorf("after redelivery %d rejects, want 1", n)
	}
	if n := count(t, pg, `SELECT deliveries FROM cloudtrail_objects WHERE s3_key = 'a'`); n != 2 {
		t.Errorf("ledger deliveries %d, want 2", n)
	}
	ok, err := pg.Processed(ctx, "bucket", "b")
	if err != nil || !ok {
		t.Errorf("Processed(b) = %v, %v; want true", ok, err)
	}
	ok, err = pg.Processed(ctx, "bucket", "c")
	if err != nil || ok {
		t.Errorf("Processed(c) = %v, %v; want false", ok, err)
	}
	var params string
	if err := pg.Pool().QueryRow(ctx, `SELECT request_parameters->>'bucketName' FROM cloudtrail_events WHERE event_id = 'e1'`).Scan(&params); err != nil || params != "b" {
		t.Errorf("request_parameters->>'bucketName' = %q, %v", params, err)
	}
}

func TestWriteIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	boom := io.ErrUnexpectedEOF
	_, err := pg.WriteStreamed(ctx, &sink.StreamedObject{
		Object:  sink.Object{Bucket: "bucket", Key: "bad"},
		Entries: &rows{items: []cloudtrail.Entry{event("e1", time.Now(), "bad"), event("e2", time.Now(), "bad")}, err: boom},
	})
	if err != boom {
		t.Fatalf("WriteStreamed returned %v, want the entry source's error", err)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 0 {
		t.Errorf("%d events stored after a failed write, want 0", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_objects`); n != 0 {
		t.Errorf("%d ledger rows after a failed write, want 0", n)
	}
}
