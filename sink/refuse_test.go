package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// overflow gives an event a requestParameters number beyond numeric's
// range, in its record too, as a decoded record has it.
func overflow(e *cloudtrail.Event) {
	e.RequestParameters = json.RawMessage(`{"n":1e999999}`)
	e.Record = json.RawMessage(`{"eventID":"` + e.EventID + `","requestParameters":{"n":1e999999}}`)
}

// TestWriteRejectsWhatPostgresRefuses writes, through the buffered path and
// the streamed one, objects whose events PostgreSQL would refuse (a number
// numeric cannot hold, values too long to index) among good ones: each
// refused event is a reject with the reason, everything else is stored and
// counted, and writing the objects again stores nothing twice. The record
// column may be json, as the benchmark tries it.
func TestWriteRejectsWhatPostgresRefuses(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"buffered", "streamed", "buffered, record json", "streamed, record json"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			pg := setup(t)
			ctx := context.Background()
			if strings.HasSuffix(path, "record json") {
				if _, err := pg.Pool().Exec(ctx, `ALTER TABLE cloudtrail_events ALTER COLUMN record TYPE json`); err != nil {
					t.Fatal(err)
				}
			}
			at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
			objects := func() []*testObject {
				a := []cloudtrail.Entry{
					event("a0", at, "a"),
					refusedRow(randomHex(5<<10), "a", func(*cloudtrail.Event) {}),
					event("a2", at, "a"),
					refusedRow("a3", "a", overflow),
					refusedRow("a4", "a", func(e *cloudtrail.Event) { e.UserIdentityARN = "arn:aws:iam::1:user/" + strings.Repeat("x", 4<<10) }),
					event("a5", at, "a"),
				}
				b := []cloudtrail.Entry{event("b0", at, "b"), refusedRow("b1", "b", overflow), event("b2", at, "b")}
				c := []cloudtrail.Entry{event("c0", at, "c")}
				objs := []*testObject{}
				for _, o := range []struct {
					key  string
					rows []cloudtrail.Entry
				}{{"a", a}, {"b", b}, {"c", c}} {
					obj := &testObject{Bucket: "bucket", Key: o.key, Size: 1}
					if strings.HasPrefix(path, "buffered") {
						obj.Entries = o.rows
					} else {
						obj.Stream = &rows{items: o.rows}
					}
					objs = append(objs, obj)
				}
				return objs
			}
			want := []sink.WriteResult{{Events: 3, Inserted: 3, Rejected: 3}, {Events: 2, Inserted: 2, Rejected: 1}, {Events: 1, Inserted: 1}}
			res, err := write(ctx, pg, objects())
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if res[i] != want[i] {
					t.Errorf("object %d: %+v, want %+v", i, res[i], want[i])
				}
			}
			for _, r := range []struct {
				key   string
				index int
				why   string
			}{
				{"a", 1, "eventID"},
				{"a", 3, "value overflows numeric format (SQLSTATE 22003)"},
				{"a", 4, "userIdentity.arn"},
				{"b", 1, "requestParameters"},
			} {
				var reason, raw string
				err := pg.Pool().QueryRow(ctx, `SELECT reason, raw FROM cloudtrail_rejects WHERE s3_key = $1 AND record_index = $2`, r.key, r.index).Scan(&reason, &raw)
				if err != nil {
					t.Errorf("record %d of %s: %v", r.index, r.key, err)
					continue
				}
				if !strings.Contains(reason, r.why) {
					t.Errorf("record %d of %s: reason %q does not say %q", r.index, r.key, reason, r.why)
				}
				if !strings.HasPrefix(raw, `{"eventID":`) {
					t.Errorf("record %d of %s: raw %.40q is not the record", r.index, r.key, raw)
				}
			}
			if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 6 {
				t.Errorf("%d events, want 6", n)
			}

			res, err = write(ctx, pg, objects())
			if err != nil {
				t.Fatal(err)
			}
			want = []sink.WriteResult{{Events: 3, Duplicates: 3, Rejected: 3}, {Events: 2, Duplicates: 2, Rejected: 1}, {Events: 1, Duplicates: 1}}
			for i := range want {
				if res[i] != want[i] {
					t.Errorf("again, object %d: %+v, want %+v", i, res[i], want[i])
				}
			}
			if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 6 {
				t.Errorf("again: %d events, want 6", n)
			}
			if n := count(t, pg, `SELECT count(*) FROM cloudtrail_rejects`); n != 4 {
				t.Errorf("again: %d rejects, want 4", n)
			}
		})
	}
}

// TestWriteRejectsWhatAConstraintRefuses adds to cloudtrail_events what an
// operator might (a CHECK constraint, an index on a column pgtrail does not
// index): the rows they refuse are rejects with PostgreSQL's reason, the
// others are stored.
func TestWriteRejectsWhatAConstraintRefuses(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	// The day's partition first: one created later would lack the
	// constraint, which pgtrail_ensure_partition does not copy.
	if _, err := write(ctx, pg, []*testObject{buffered("first", event("first", at, "first"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Pool().Exec(ctx, `
        ALTER TABLE cloudtrail_events ADD CONSTRAINT no_deletes CHECK (event_name <> 'DeleteBucket');
        CREATE INDEX cloudtrail_events_agent ON cloudtrail_events (user_agent)`); err != nil {
		t.Fatal(err)
	}
	res, err := write(ctx, pg, []*testObject{
		buffered("a", event("a0", at, "a"), refusedRow("a1", "a", func(e *cloudtrail.Event) { e.EventName = "DeleteBucket" }), event("a2", at, "a")),
		buffered("b", refusedRow("b0", "b", func(e *cloudtrail.Event) { e.UserAgent = randomHex(5 << 10) }), event("b1", at, "b")),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sink.WriteResult{{Events: 2, Inserted: 2, Rejected: 1}, {Events: 1, Inserted: 1, Rejected: 1}}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("object %d: %+v, want %+v", i, res[i], want[i])
		}
	}
	for key, why := range map[string]string{"a": "(SQLSTATE 23514)", "b": "(SQLSTATE 54000)"} {
		if n := count(t, pg, `SELECT count(*) FROM cloudtrail_rejects WHERE s3_key = $1 AND reason LIKE '%' || $2`, key, why); n != 1 {
			t.Errorf("object %s: %d rejects that say %s, want 1", key, n, why)
		}
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 4 {
		t.Errorf("%d events, want 4", n)
	}
}

// TestWriterRoleRejectsRefusedEvents: the writer role, with no more than
// its grants, finds the events PostgreSQL refuses, by either means
// (refuse.go), and stores the rest.
func TestWriterRoleRejectsRefusedEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.New(t)
	owner := openAs(t, dbURL, sink.Config{})
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	pg := openAs(t, loginRole(t, dbURL, sink.DefaultWriterRole), sink.Config{MaxConns: 2})
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := write(ctx, pg, []*testObject{buffered("first", event("first", at, "first"))}); err != nil {
		t.Fatal(err)
	}
	for i, extra := range []string{"", `ALTER TABLE cloudtrail_events ADD CONSTRAINT not_k1_2 CHECK (event_id <> 'k1-2')`} {
		if extra != "" {
			if _, err := owner.Pool().Exec(ctx, extra); err != nil {
				t.Fatal(err)
			}
		}
		key := fmt.Sprint("k", i)
		res, err := write(ctx, pg, []*testObject{buffered(key,
			event(key+"-0", at, key), refusedRow(key+"-1", key, overflow),
			event(key+"-2", at, key), event(key+"-3", at, key))})
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		want := sink.WriteResult{Events: 3 - i, Inserted: 3 - i, Rejected: 1 + i}
		if res[0] != want {
			t.Errorf("%s: %+v, want %+v", key, res[0], want)
		}
	}
	if n := count(t, owner, `SELECT count(*) FROM cloudtrail_rejects`); n != 3 {
		t.Errorf("%d rejects, want 3", n)
	}
}
