package sink_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// jsonColumns are the columns of cloudtrail_events that 0006 compresses
// with LZ4.
var jsonColumns = []string{"record", "request_parameters", "response_elements", "additional_event_data", "resources"}

// bigEvent is an event whose record (about 6 kB, repetitive like an IAM
// policy) is compressed when stored.
func bigEvent(id string, at time.Time, key string) cloudtrail.Entry {
	row := event(id, at, key)
	stmt := map[string]any{"Effect": "Allow", "Action": []string{"s3:GetObject", "s3:PutObject"}, "Resource": "arn:aws:s3:::data/*"}
	policy := make([]any, 60)
	for i := range policy {
		policy[i] = stmt
	}
	row.Event.Record, _ = json.Marshal(map[string]any{
		"eventID": id, "eventTime": at.Format(time.RFC3339),
		"requestParameters": map[string]any{"policyDocument": map[string]any{"Statement": policy}},
	})
	return row
}

// attCompression returns the compression method (attcompression: "l" for
// LZ4, "p" for pglz, "" for the server's default) of each named column of
// table, as "column=method" joined by spaces.
func attCompression(t *testing.T, pg *sink.Postgres, table string, cols []string) string {
	t.Helper()
	var out []string
	for _, c := range cols {
		var m string
		if err := pg.Pool().QueryRow(context.Background(), `SELECT attcompression::text FROM pg_attribute
            WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped`, table, c).Scan(&m); err != nil {
			t.Fatalf("%s.%s: %v", table, c, err)
		}
		out = append(out, c+"="+m)
	}
	return strings.Join(out, " ")
}

func methods(cols []string, method string) string {
	var out []string
	for _, c := range cols {
		out = append(out, c+"="+method)
	}
	return strings.Join(out, " ")
}

// TestMigrationCompressesJSONWithLZ4: after 0006 the JSON columns of
// cloudtrail_events, of the partitions that existed and of those created
// later compress with LZ4, and the writer's rows are stored so; rows stored
// before keep their compression. On a server without LZ4 the migration
// succeeds and changes nothing.
func TestMigrationCompressesJSONWithLZ4(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setupTo(t, 5)
	var hasLZ4 bool
	var serverDefault string
	if err := pg.Pool().QueryRow(ctx, `SELECT 'lz4' = ANY(enumvals), current_setting('default_toast_compression')
        FROM pg_settings WHERE name = 'default_toast_compression'`).Scan(&hasLZ4, &serverDefault); err != nil {
		t.Fatal(err)
	}

	day1 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	if _, err := write(ctx, pg, []*testObject{buffered("before", bigEvent("before", day1, "before"))}); err != nil {
		t.Fatal(err)
	}
	applied, err := pg.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(applied, 6) {
		t.Fatalf("migrate applied %v, want 6 among them", applied)
	}
	// A late event for the old partition, and a new day, whose partition
	// pgtrail_ensure_partition creates after the migration.
	if _, err := write(ctx, pg, []*testObject{buffered("after", bigEvent("after-day1", day1, "after"), bigEvent("after-day2", day2, "after"))}); err != nil {
		t.Fatal(err)
	}
	// The staging path (an object streamed, not decoded ahead) stores
	// lz4 too: a value compressed in the staging table would keep pglz.
	streamed := &testObject{Bucket: "bucket", Key: "streamed", Size: 1, Stream: &rows{items: []cloudtrail.Entry{bigEvent("streamed", day2, "streamed")}}}
	if _, err := write(ctx, pg, []*testObject{streamed}); err != nil {
		t.Fatal(err)
	}

	method, stored := "l", "lz4"
	if !hasLZ4 {
		t.Logf("the server has no LZ4: checking that the migration left pglz in place")
		method, stored = "", serverDefault
	}
	for _, table := range []string{"cloudtrail_events", "cloudtrail_events_20240501", "cloudtrail_events_20240502"} {
		if got, w := attCompression(t, pg, table, jsonColumns), methods(jsonColumns, method); got != w {
			t.Errorf("%s: %s, want %s", table, got, w)
		}
		if got, w := attCompression(t, pg, table, []string{"user_agent", "error_message"}), methods([]string{"user_agent", "error_message"}, ""); got != w {
			t.Errorf("%s: %s, want %s (text columns keep the server's default)", table, got, w)
		}
	}

	for id, w := range map[string]string{"before": serverDefault, "after-day1": stored, "after-day2": stored, "streamed": stored} {
		var got *string
		if err := pg.Pool().QueryRow(ctx, `SELECT pg_column_compression(record) FROM cloudtrail_events WHERE event_id = $1`, id).Scan(&got); err != nil {
			t.Fatalf("event %s: %v", id, err)
		}
		if got == nil || *got != w {
			t.Errorf("event %s: record compressed with %v, want %s", id, deref(got), w)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "nothing (stored uncompressed)"
	}
	return *s
}
