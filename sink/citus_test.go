package sink_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// What Citus needs of the write path (docs/scaling.md), checked on plain
// PostgreSQL: every statement must keep working there unchanged.

// TestUniqueViolationByCondition: a unique violation is recognized by its
// SQLSTATE, or by its message whatever the code, as a Citus coordinator
// relays a worker's during COPY (XX000); other errors are not one.
func TestUniqueViolationByCondition(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"23505", &pgconn.PgError{Code: "23505", Message: `duplicate key value violates unique constraint "cloudtrail_events_20240501_pkey"`, ConstraintName: "cloudtrail_events_20240501_pkey"}, true},
		{"relayed by the coordinator", &pgconn.PgError{Severity: "ERROR", Code: "XX000",
			Message: `duplicate key value violates unique constraint "cloudtrail_events_pkey_102008"`,
			Detail:  `Key (event_id, event_time)=(e1, 2024-05-01 10:00:00+00) already exists.`}, true},
		{"wrapped", fmt.Errorf("postgres: copy: %w", &pgconn.PgError{Code: "XX000", Message: `COPY from worker: duplicate key value violates unique constraint "x_pkey_1"`}), true},
		{"another internal error", &pgconn.PgError{Code: "XX000", Message: "could not find shard for partition column value"}, false},
		{"a deadlock", &pgconn.PgError{Code: "40P01", Message: "canceling the transaction since it was involved in a distributed deadlock"}, false},
		{"a check violation", &pgconn.PgError{Code: "23514", Message: `new row for relation "cloudtrail_events" violates check constraint "x"`}, false},
		{"not from PostgreSQL", errors.New("duplicate key value violates unique constraint"), false},
		{"nil", nil, false},
	} {
		if got := sink.UniqueViolation(c.err); got != c.want {
			t.Errorf("%s: uniqueViolation = %v, want %v", c.name, got, c.want)
		}
	}
}

// relayUniqueViolation makes cloudtrail_events refuse, during a COPY, a row
// that is stored already with the error a Citus coordinator relays:
// SQLSTATE XX000 and the worker's message, as no plain PostgreSQL reports
// it. INSERT … ON CONFLICT (the staging path) is left alone.
const relayUniqueViolation = `
CREATE FUNCTION relay_unique_violation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_query() ~* '^\s*COPY' AND EXISTS (SELECT 1 FROM cloudtrail_events
            WHERE event_id = NEW.event_id AND event_time = NEW.event_time) THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "cloudtrail_events_pkey_102008"'
            USING ERRCODE = 'XX000', DETAIL = format('Key (event_id, event_time)=(%s, %s) already exists.', NEW.event_id, NEW.event_time);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER relay_unique_violation BEFORE INSERT ON cloudtrail_events
    FOR EACH ROW EXECUTE FUNCTION relay_unique_violation()`

// TestWriteBufferedFallsBackOnRelayedUniqueViolation: a COPY that meets a
// stored event, reported as Citus reports it, is written again without
// it, and counted exactly, instead of failing the batch.
func TestWriteBufferedFallsBackOnRelayedUniqueViolation(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	if _, err := pg.Pool().Exec(ctx, relayUniqueViolation); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	if _, err := write(ctx, pg, []*testObject{buffered("a", event("e1", day, "a"), event("e2", day, "a"))}); err != nil {
		t.Fatal(err)
	}
	// The trigger fires: a hand-made COPY of a stored event fails as on
	// Citus.
	_, err := pg.Pool().CopyFrom(ctx, pgx.Identifier{"cloudtrail_events"}, []string{"event_id", "event_time", "record", "s3_bucket", "s3_key"},
		pgx.CopyFromRows([][]any{{"e1", day, []byte(`{}`), "b", "k"}}))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "XX000" {
		t.Fatalf("COPY of a stored event: %v, want SQLSTATE XX000", err)
	}

	// The sampled probe looks at each object's first and last event only:
	// e1, between two new ones, reaches the COPY, and then the staging
	// path too once the writer stops probing.
	for i := range probeRounds {
		key := fmt.Sprint("b", i)
		res, err := write(ctx, pg, []*testObject{buffered(key,
			event("n"+key, day, key), event("e1", day, key), event("m"+key, day, key))})
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if want := (sink.WriteResult{Events: 3, Inserted: 2, Duplicates: 1}); res[0] != want {
			t.Errorf("batch %d: %+v, want %+v", i, res[0], want)
		}
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 2+2*probeRounds {
		t.Errorf("%d events stored, want %d", n, 2+2*probeRounds)
	}
}

// probeRounds is more batches than the writer probes before it COPYs
// without probing.
const probeRounds = 6

// correlatedProbe is the duplicate probe as it was before Citus: one
// correlated EXISTS per key over unnest, which Citus cannot plan. It is the
// reference that probeEvents must agree with.
const correlatedProbe = `SELECT k.i FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS k(id, t, i)
    WHERE EXISTS (SELECT 1 FROM cloudtrail_events e WHERE e.event_id = k.id AND e.event_time = k.t)`

// TestProbeAgreesWithCorrelatedForm: the probe finds exactly
// the stored keys the correlated one finds, among keys that cross a stored
// ID with another stored event's time, repeat a key, or differ from a
// stored one by a microsecond or a day.
func TestProbeAgreesWithCorrelatedForm(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	base := time.Date(2024, 5, 1, 23, 59, 59, 999999000, time.UTC)
	var stored []cloudtrail.Entry
	for i := range 40 {
		stored = append(stored, event(fmt.Sprintf("s%02d", i), base.Add(time.Duration(i%4)*time.Hour), "a"))
	}
	if _, err := write(ctx, pg, []*testObject{buffered("a", stored...)}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	var times []time.Time
	add := func(id string, at time.Time) { ids, times = append(ids, id), append(times, at) }
	for i, s := range stored {
		e := s.Event
		switch i % 5 {
		case 0:
			add(e.EventID, e.EventTime)
		case 1:
			add(e.EventID, e.EventTime.Add(time.Microsecond))
		case 2:
			add(e.EventID, stored[(i+1)%len(stored)].Event.EventTime) // another stored event's time
			add(e.EventID, e.EventTime)
		case 3:
			add(e.EventID, e.EventTime.Add(24*time.Hour))
			add(e.EventID, e.EventTime) // twice
			add(e.EventID, e.EventTime)
		case 4:
			add("new"+e.EventID, e.EventTime)
		}
	}
	rows, err := pg.Pool().Query(ctx, correlatedProbe, ids, times)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	got, err := pg.ProbeStored(ctx, ids, times)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 8*4 { // 8 of each i%5 case: 1 + 0 + 1 + 2 + 0 stored keys
		t.Fatalf("the correlated probe found %d keys, want %d: %v", len(want), 8*4, want)
	}
	if !slices.Equal(got, want) {
		t.Errorf("probe found %v\nthe correlated form %v", got, want)
	}
	if strings.Contains(sink.ProbeEvents, "unnest") || strings.Contains(sink.ProbeEvents, "(SELECT") {
		t.Errorf("the probe has a subquery or a set-returning function, which Citus cannot correlate:\n%s", sink.ProbeEvents)
	}
}

// TestLedgerRedeliveryTakesItsTime: a redelivery's ledger row takes the
// time of the transaction that wrote it again (EXCLUDED.processed_at, the
// column's default).
func TestLedgerRedeliveryTakesItsTime(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	day := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var first, second time.Time
	var deliveries int
	for i, at := range []*time.Time{&first, &second} {
		obj := buffered("a", event("e1", day, "a"))
		if i == 1 {
			obj.Stream = &rows{items: obj.Entries} // the staging path writes the ledger too
		}
		if _, err := write(ctx, pg, []*testObject{obj}); err != nil {
			t.Fatal(err)
		}
		if err := pg.Pool().QueryRow(ctx, `SELECT processed_at, deliveries FROM cloudtrail_objects WHERE s3_key = 'a'`).Scan(at, &deliveries); err != nil {
			t.Fatal(err)
		}
	}
	if deliveries != 2 || !second.After(first) {
		t.Errorf("after a redelivery: deliveries %d, processed_at %s then %s; want 2 and a later time", deliveries, first, second)
	}
}

// TestNoFunctionCallInDoUpdateSet reads the SQL of every non-test file of
// the package: no INSERT … ON CONFLICT DO UPDATE SET calls a function,
// which Citus refuses on a distributed or reference table unless it is
// IMMUTABLE (now() is not). COALESCE, NULLIF, GREATEST and LEAST are
// expressions, not functions.
func TestNoFunctionCallInDoUpdateSet(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`(?i)\b([a-z_][a-z0-9_.]*)\s*\(`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(src)), " ")
		for _, part := range strings.Split(text, "DO UPDATE SET")[1:] {
			found++
			set, _, _ := strings.Cut(part, "`")
			// The clause ends at RETURNING (what follows may be other
			// statements of a WITH).
			set, _, _ = strings.Cut(set, " RETURNING ")
			for _, m := range call.FindAllStringSubmatch(set, -1) {
				switch strings.ToLower(m[1]) {
				case "coalesce", "nullif", "greatest", "least":
				default:
					t.Errorf("%s: DO UPDATE SET calls %s(…), which Citus refuses unless it is IMMUTABLE:%s", f, m[1], set)
				}
			}
		}
	}
	if found < 3 { // the ledger, the failures, the alert deliveries
		t.Errorf("found %d DO UPDATE SET clauses, want 3 or more", found)
	}
}

// TestRejectsKeyIsDistributable: after 0012, every unique key of
// cloudtrail_rejects includes s3_key, its distribution column on Citus;
// rejects stored before are kept, a reject written again is still stored
// once, and the latest is still found.
func TestRejectsKeyIsDistributable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The schema as 0011 left it, with rejects stored.
	pg := setupTo(t, 11)
	reject := func(key string, i int) cloudtrail.Entry {
		return cloudtrail.Entry{Reject: &cloudtrail.Reject{S3Bucket: "bucket", S3Key: key, Index: i, Reason: "eventTime missing", Raw: `{}`}}
	}
	if _, err := write(ctx, pg, []*testObject{buffered("old", reject("old", 0), reject("old", 1))}); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	rs, _ := pg.Pool().Query(ctx, `SELECT pg_get_indexdef(indexrelid) FROM pg_index
        WHERE indrelid = 'cloudtrail_rejects'::regclass AND indisunique ORDER BY 1`)
	keys, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.Contains(keys[0], "cloudtrail_rejects_pkey") || !strings.Contains(keys[0], "(s3_bucket, s3_key, record_index)") {
		t.Errorf("unique indexes of cloudtrail_rejects: %q; want the primary key on (s3_bucket, s3_key, record_index) alone", keys)
	}
	day := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for range 2 { // the second is a redelivery
		obj := buffered("new", event("e1", day, "new"), reject("new", 1))
		if _, err := write(ctx, pg, []*testObject{obj}); err != nil {
			t.Fatal(err)
		}
		obj.Stream = &rows{items: obj.Entries}
		if _, err := write(ctx, pg, []*testObject{obj}); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_rejects`); n != 3 {
		t.Errorf("%d rejects, want 3 (two kept from before, one written four times)", n)
	}
	if n := count(t, pg, `SELECT count(DISTINCT id) FROM cloudtrail_rejects WHERE id IS NOT NULL`); n != 3 {
		t.Errorf("%d distinct ids, want 3", n)
	}
	st, err := sink.ReadStatus(ctx, pg.Pool().Config().ConnString(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var latest time.Time
	if err := pg.Pool().QueryRow(ctx, `SELECT rejected_at FROM cloudtrail_rejects WHERE s3_key = 'new'`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	if st.Rejects != 3 || !st.LastRejectAt.Equal(latest) {
		t.Errorf("status: %d rejects, the latest at %s; want 3 and %s", st.Rejects, st.LastRejectAt, latest)
	}
}

// TestEnsurePartitionSequentialOnCitus: pgtrail_ensure_partition sets
// citus.multi_shard_modify_mode to sequential for its transaction where the
// citus extension is installed, and leaves it alone elsewhere. Citus is
// not installed here: its row in pg_extension is made by hand, in a
// transaction that is rolled back.
func TestEnsurePartitionSequentialOnCitus(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	for _, citus := range []bool{false, true} {
		tx, err := pg.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if citus {
			if _, err := tx.Exec(ctx, `INSERT INTO pg_extension (oid, extname, extowner, extnamespace, extrelocatable, extversion)
                VALUES (pg_catalog.pg_nextoid('pg_catalog.pg_extension', 'oid', 'pg_catalog.pg_extension_oid_index'),
                        'citus', 10, 'pg_catalog'::regnamespace, false, '13.2')`); err != nil {
				t.Fatal(err)
			}
		}
		var created bool
		var mode *string
		if err := tx.QueryRow(ctx, `SELECT pgtrail_ensure_partition(date '2024-05-01')`).Scan(&created); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(ctx, `SELECT current_setting('citus.multi_shard_modify_mode', true)`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback(ctx)
		switch {
		case !created:
			t.Errorf("citus %v: the partition was not created", citus)
		case citus && (mode == nil || *mode != "sequential"):
			t.Errorf("with the citus extension: citus.multi_shard_modify_mode = %v, want sequential", mode)
		case !citus && mode != nil && *mode != "":
			t.Errorf("without the citus extension: citus.multi_shard_modify_mode = %q, want unset", *mode)
		}
	}
}
