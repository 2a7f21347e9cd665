package sink_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/migrations"
	"github.com/pgtrail/pgtrail/sink"
)

func TestReadStatusNotMigrated(t *testing.T) {
	t.Parallel()
	st, err := sink.ReadStatus(t.Context(), pgtest.New(t), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Schema != 0 || st.Binary == 0 {
		t.Errorf("schema %d, binary %d; want 0 and the latest embedded migration", st.Schema, st.Binary)
	}
}

func TestReadStatus(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.New(t)
	pg, err := sink.Open(ctx, sink.Config{URL: dsn}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	st, err := sink.ReadStatus(ctx, dsn, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := migrations.All()
	latest := all[len(all)-1].Version
	if st.Schema != latest || st.Binary != latest {
		t.Errorf("schema %d, binary %d; want both %d", st.Schema, st.Binary, latest)
	}
	if st.Hour != (sink.IngestWindow{}) || st.Day != (sink.IngestWindow{}) || st.Last != nil || st.Rejects != 0 || st.Partitions.Count != 0 {
		t.Errorf("an empty database reads as %+v", st)
	}

	for _, q := range []string{
		// Two objects in the last hour, one earlier today, one two days ago.
		`INSERT INTO cloudtrail_objects (s3_bucket, s3_key, size, events, inserted, duplicates, rejected, processed_at) VALUES
		 ('b', 'k1', 10, 5, 4, 1, 0, now() - interval '10 minutes'),
		 ('b', 'k2', 10, 3, 3, 0, 1, now() - interval '1 minute'),
		 ('b', 'k3', 10, 7, 7, 0, 0, now() - interval '5 hours'),
		 ('b', 'k4', 10, 100, 100, 0, 0, now() - interval '2 days')`,
		`INSERT INTO cloudtrail_rejects (s3_bucket, s3_key, record_index, reason, raw, rejected_at) VALUES
		 ('b', 'k2', 0, 'no eventTime', '{}', '2026-03-01T10:00:00Z'),
		 ('b', 'k2', 1, 'no eventTime', '{}', '2026-03-02T10:00:00Z')`,
		`SELECT pgtrail_ensure_partition(date '2024-08-01')`,
		`SELECT pgtrail_ensure_partition(date '2024-08-03')`,
	} {
		if _, err := pg.Pool().Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	st, err = sink.ReadStatus(ctx, dsn, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := (sink.IngestWindow{Objects: 2, Events: 8, Inserted: 7, Duplicates: 1, Rejected: 1}); st.Hour != want {
		t.Errorf("last hour %+v, want %+v", st.Hour, want)
	}
	if want := (sink.IngestWindow{Objects: 3, Events: 15, Inserted: 14, Duplicates: 1, Rejected: 1}); st.Day != want {
		t.Errorf("last day %+v, want %+v", st.Day, want)
	}
	if l := st.Last; l == nil || l.Bucket != "b" || l.Key != "k2" || l.Events != 3 || l.Inserted != 3 || l.Rejects != 1 {
		t.Errorf("last object %+v, want b/k2", l)
	}
	if st.Rejects != 2 || !st.LastRejectAt.Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("rejects %d, the latest at %s; want 2 at 2026-03-02T10:00:00Z", st.Rejects, st.LastRejectAt)
	}
	if p := st.Partitions; p.Count != 2 || p.Oldest != "cloudtrail_events_20240801" || p.Newest != "cloudtrail_events_20240803" || p.Bytes <= 0 {
		t.Errorf("partitions %+v", p)
	}
}

// TestReadStatusScrubsPassword: the error of an unreachable database, and
// the URL shown beside it, hold no password, in whatever form.
func TestReadStatusScrubsPassword(t *testing.T) {
	t.Parallel()
	const password = "s3cr3t pw/do@not#print"
	for _, dsn := range []string{
		"postgres://pgtrail:" + strings.NewReplacer(" ", "%20", "/", "%2F", "@", "%40", "#", "%23").Replace(password) +
			"@127.0.0.1:1/pgtrail?sslmode=disable",
		"host=127.0.0.1 port=1 user=pgtrail password='" + password + "' sslmode=disable",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		st, err := sink.ReadStatus(ctx, dsn, 2*time.Second)
		cancel()
		if err == nil {
			t.Fatalf("%s: read a database on port 1", st.URL)
		}
		for _, shown := range []string{err.Error(), st.URL} {
			if strings.Contains(shown, "s3cr3t") {
				t.Errorf("the password is shown: %q", shown)
			}
		}
	}
}
