package sink_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
)

// refusedRow is an event of the object key whose field set makes
// PostgreSQL refuse it, as the worker's normalization would leave it.
func refusedRow(id, key string, set func(e *cloudtrail.Event)) cloudtrail.Entry {
	row := event(id, time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), key)
	set(&row.Event)
	return row
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestWriteRejectsValuesTooLongToIndex: an event with a value in an
// indexed column longer than an index can be relied on to hold is a
// reject that says so, by either path; the other events are stored.
func TestWriteRejectsValuesTooLongToIndex(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	long := func(key string) []cloudtrail.Entry {
		return []cloudtrail.Entry{
			event(key+"-0", at, key),
			refusedRow(randomHex(5<<10), key, func(*cloudtrail.Event) {}),
			refusedRow(key+"-2", key, func(e *cloudtrail.Event) { e.UserIdentityARN = "arn:aws:iam::1:user/" + strings.Repeat("x", 4<<10) }),
			refusedRow(key+"-3", key, func(e *cloudtrail.Event) { e.SourceIPAddress = strings.Repeat("1", 2048) }),
		}
	}
	res, err := write(ctx, pg, []*testObject{
		{Bucket: "bucket", Key: "buffered", Entries: long("buffered")},
	})
	if err != nil {
		t.Fatal(err)
	}
	res2, err := write(ctx, pg, []*testObject{{Bucket: "bucket", Key: "streamed", Stream: &rows{items: long("streamed")}}})
	if err != nil {
		t.Fatal(err)
	}
	want := sink.WriteResult{Events: 2, Inserted: 2, Rejected: 2}
	if res[0] != want || res2[0] != want {
		t.Errorf("results %+v and %+v, want %+v", res[0], res2[0], want)
	}
	for _, key := range []string{"buffered", "streamed"} {
		for index, why := range map[int]string{1: "eventID of 10240 bytes", 2: "userIdentity.arn of 4116 bytes"} {
			if n := count(t, pg, `SELECT count(*) FROM cloudtrail_rejects WHERE s3_key = $1 AND record_index = $2 AND reason LIKE $3 || '%'`, key, index, why); n != 1 {
				t.Errorf("%s: no reject of record %d that says %q", key, index, why)
			}
		}
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 4 {
		t.Errorf("%d events, want 4", n)
	}
}

// TestWriteRefusesObjectNamesNotText: an object whose bucket or key is not
// text PostgreSQL can hold cannot be stored at all, and is refused as
// permanently failed, without a database error.
func TestWriteRefusesObjectNamesNotText(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, key := range []string{"nul\x00.json", "latin1-\xe9.json"} {
		_, err := write(ctx, pg, []*testObject{buffered("ok", event("ok", at, "ok")), buffered(key, event("x", at, key))})
		if err == nil || !retry.IsPermanent(err) || strings.Contains(err.Error(), "SQLSTATE") {
			t.Errorf("key %q: %v; want a permanent error that is pgtrail's own", key, err)
		}
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_objects`); n != 0 {
		t.Errorf("%d ledger rows after refused writes, want 0", n)
	}
}

// TestIndexedColumnsAreChecked: every text column that an index of
// cloudtrail_events holds has its length checked before the write, so that
// a value no index can hold is a reject, not a failed transaction.
func TestIndexedColumnsAreChecked(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	rows, err := pg.Pool().Query(context.Background(), `
        SELECT DISTINCT a.attname FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = 'cloudtrail_events'::regclass AND a.atttypid = 'text'::regtype
        ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var indexed []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		indexed = append(indexed, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	checked := sink.IndexedColumns()
	if fmt.Sprint(indexed) != fmt.Sprint(checked) {
		t.Errorf("indexed text columns %v; the writer checks %v", indexed, checked)
	}
}
