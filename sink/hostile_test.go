package sink_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// hostileDB is a database migrated by the test server's superuser (the
// owner) with a reader and a writer role of its own, one login role in each,
// and a few stored events, ledger rows and a reject: what a hostile reader
// or writer would go after.
type hostileDB struct {
	url       string
	owner     *sink.Postgres
	ownerName string
	// reader and writer are the group roles; readerLogin and writerLogin
	// their login members, which the attacks connect as.
	reader, writer           string
	readerLogin, writerLogin string
	// today is the name of today's partition.
	today string
}

// Days the hostile tests store events on, besides today.
var (
	hostileOld  = time.Date(2016, 2, 29, 12, 0, 0, 0, time.UTC)
	hostileKept = time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)
)

// newHostileDB creates the roles and the database and migrates it up to
// version last (0 for every migration) with cfg's retention settings. The
// roles are made before the database and dropped after it, so that what the
// login roles create there goes with the database.
func newHostileDB(t *testing.T, last int, cfg sink.Config) *hostileDB {
	t.Helper()
	base := uniqueName("pgtrail_h_")
	h := &hostileDB{reader: base + "_r", writer: base + "_w", readerLogin: base + "_rl", writerLogin: base + "_wl"}
	dropRolesAtEnd(t, h.readerLogin, h.writerLogin, h.reader, h.writer)
	admin(t, fmt.Sprintf(`CREATE ROLE %[1]s NOLOGIN; CREATE ROLE %[2]s NOLOGIN;
        CREATE ROLE %[3]s LOGIN IN ROLE %[1]s; CREATE ROLE %[4]s LOGIN IN ROLE %[2]s`,
		h.reader, h.writer, h.readerLogin, h.writerLogin))
	h.url = pgtest.New(t)
	cfg.ReaderRole, cfg.WriterRole = h.reader, h.writer
	h.owner = openAs(t, h.url, cfg)
	h.migrate(t, last)
	ctx := context.Background()
	if err := h.owner.Pool().QueryRow(ctx, `SELECT current_user`).Scan(&h.ownerName); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	h.today = "cloudtrail_events_" + now.Format("20060102")
	if _, err := write(ctx, h.owner, []*testObject{{Bucket: "bucket", Key: "a", Stream: &rows{items: []cloudtrail.Entry{
		event("old", hostileOld, "a"), event("kept", hostileKept, "a"), event("today", now, "a"),
		{Reject: &cloudtrail.Reject{S3Bucket: "bucket", S3Key: "a", Index: 3, Reason: "eventTime missing", Raw: "{}"}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	return h
}

// migrate applies the migrations up to version last, or all of them.
func (h *hostileDB) migrate(t *testing.T, last int) {
	t.Helper()
	var err error
	if last > 0 {
		_, err = h.owner.MigrateTo(context.Background(), last)
	} else {
		_, err = h.owner.Migrate(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// as connects as one of the login roles.
func (h *hostileDB) as(t *testing.T, login string) *pgx.Conn {
	t.Helper()
	return connect(t, asUser(t, h.url, login))
}

// setPublicCreate grants CREATE on schema public to PUBLIC, as PostgreSQL
// 14 and older do by default, or revokes it, as 15 does.
func (h *hostileDB) setPublicCreate(t *testing.T, granted bool) {
	t.Helper()
	sql := `REVOKE CREATE ON SCHEMA public FROM PUBLIC`
	if granted {
		sql = `GRANT CREATE ON SCHEMA public TO PUBLIC`
	}
	if _, err := h.owner.Pool().Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// attemptAll runs each statement on c, in order, and ignores whether it
// works: an attack that fails is what the test hopes for, and the checks
// that follow judge the outcome.
func attemptAll(t *testing.T, c *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if _, err := c.Exec(context.Background(), sql); err != nil {
			t.Logf("attack refused: %.60s…: %v", strings.Join(strings.Fields(sql), " "), err)
		}
	}
}

// writerTempCatalogAttack connects as the writer and shadows pg_class and
// pg_inherits with temporary views that present cloudtrail_objects,
// cloudtrail_rejects and today's partition as partitions of
// cloudtrail_events that ended in 1970, then asks for retention with a 1970
// cutoff. A function that searches the caller's temporary schema first
// drops them with its owner's rights.
func writerTempCatalogAttack(t *testing.T, h *hostileDB) (dropped []string, err error) {
	t.Helper()
	ctx := context.Background()
	c := h.as(t, h.writerLogin)
	targets := fmt.Sprintf("('cloudtrail_objects', 'cloudtrail_rejects', '%s')", h.today)
	attemptAll(t, c,
		// A real partition that ended in 1970 lends its bound.
		`SELECT pgtrail_ensure_partition(date '1970-01-01')`,
		`CREATE TEMP VIEW pg_class AS
            SELECT c.oid, c.relname, c.relnamespace, c.reltuples, c.relacl, c.relowner, b.relpartbound
            FROM pg_catalog.pg_class c, pg_catalog.pg_class b
            WHERE c.relname IN `+targets+` AND b.relname = 'cloudtrail_events_19700101'`,
		`CREATE TEMP VIEW pg_inherits AS
            SELECT c.oid AS inhrelid, 'public.cloudtrail_events'::regclass::oid AS inhparent, 1 AS inhseqno
            FROM pg_catalog.pg_class c WHERE c.relname IN `+targets,
		`GRANT SELECT ON pg_temp.pg_class, pg_temp.pg_inherits TO PUBLIC`,
	)
	rs, _ := c.Query(ctx, `SELECT partition_name FROM pgtrail_drop_partitions_before(date '1970-01-05', false)`)
	return pgx.CollectRows(rs, pgx.RowTo[string])
}

// writerTempACLAttack connects as the writer and shadows pg_class with a
// temporary view that says cloudtrail_events grants the writer every
// privilege, then has a partition made: a function that copies the
// parent's grants from the view grants the writer DELETE and TRUNCATE on
// it. It also shadows the next partition's name with a temporary table.
func writerTempACLAttack(t *testing.T, h *hostileDB) *pgx.Conn {
	t.Helper()
	c := h.as(t, h.writerLogin)
	attemptAll(t, c,
		fmt.Sprintf(`CREATE TEMP VIEW pg_class AS
            SELECT 'public.cloudtrail_events'::regclass::oid AS oid,
                '{%s=arwdDxt/%s}'::aclitem[] AS relacl, 10::oid AS relowner`, h.writerLogin, h.ownerName),
		`GRANT SELECT ON pg_temp.pg_class TO PUBLIC`,
		`SELECT pgtrail_ensure_partition(date '2024-08-03')`,
		`CREATE TEMP TABLE cloudtrail_events_20240804 (x int)`,
	)
	return c
}

// plantedCalls is the table in which the reader's planted functions note
// who ran them.
const plantedCalls = "public.pgtrail_test_calls"

// plantFunctions connects as the reader and creates, in schema public,
// functions and an operator that match calls inside pgtrail's functions
// better than pg_catalog's own: to_char(date, text) (pg_catalog has only
// timestamp variants), pg_advisory_xact_lock(integer) (bigint),
// to_regclass(text) (cstring before PostgreSQL 16), format with the exact
// argument types of a partition's DDL (VARIADIC "any") and = (oid,
// regclass) (oid, oid). Each notes current_user and then deletes the ledger
// and the events, which only the owner may; then it does what the real one
// does. It returns the error of the first statement refused, if any.
func plantFunctions(t *testing.T, h *hostileDB) error {
	t.Helper()
	ctx := context.Background()
	c := h.as(t, h.readerLogin)
	strike := `PERFORM public.pgtrail_test_strike('%s');`
	for _, sql := range []string{
		`CREATE TABLE ` + plantedCalls + ` (who name, what text)`,
		`GRANT SELECT, INSERT ON ` + plantedCalls + ` TO PUBLIC`,
		`CREATE FUNCTION public.pgtrail_test_strike(what text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO ` + plantedCalls + ` VALUES (current_user, what);
            BEGIN
                DELETE FROM public.cloudtrail_objects;
                DELETE FROM public.cloudtrail_events;
            EXCEPTION WHEN OTHERS THEN NULL; -- not the owner, or already gone
            END;
        END $$`,
		fmt.Sprintf(`CREATE FUNCTION public.to_char(d date, f text) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN `+strike+` RETURN pg_catalog.to_char(d::timestamp, f); END $$`, "to_char(date, text)"),
		fmt.Sprintf(`CREATE FUNCTION public.pg_advisory_xact_lock(k integer) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN `+strike+` PERFORM pg_catalog.pg_advisory_xact_lock(k::bigint); END $$`, "pg_advisory_xact_lock(integer)"),
		fmt.Sprintf(`CREATE FUNCTION public.to_regclass(n text) RETURNS regclass LANGUAGE plpgsql AS $$
        BEGIN `+strike+` RETURN pg_catalog.to_regclass(n); END $$`, "to_regclass(text)"),
		fmt.Sprintf(`CREATE FUNCTION public.format(f text, a text, lo timestamptz, hi timestamptz) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN `+strike+` RETURN pg_catalog.format(f, a, lo, hi); END $$`, "format(text, text, timestamptz, timestamptz)"),
		fmt.Sprintf(`CREATE FUNCTION public.pgtrail_test_oideq(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN `+strike+` RETURN a OPERATOR(pg_catalog.=) b::oid; END $$`, "=(oid, regclass)"),
		`CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.pgtrail_test_oideq)`,
	} {
		if _, err := c.Exec(ctx, sql); err != nil {
			return err
		}
	}
	return nil
}

// plantedRunAs returns, for each role that ran one of the planted
// functions, which ones it ran; nothing if none was planted.
func plantedRunAs(t *testing.T, h *hostileDB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	var exists bool
	if err := h.owner.Pool().QueryRow(ctx, `SELECT pg_catalog.to_regclass('`+plantedCalls+`') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return nil
	}
	rs, _ := h.owner.Pool().Query(ctx, `SELECT who::text, what FROM `+plantedCalls)
	calls, err := pgx.CollectRows(rs, pgx.RowToStructByPos[struct {
		Who, What string
	}])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, c := range calls {
		if !slices.Contains(out[c.Who], c.What) {
			out[c.Who] = append(out[c.Who], c.What)
		}
	}
	return out
}

// writerWorks does what a worker does as the writer: writes a new day
// (creating its partition), creates another directly, and applies
// retention to the oldest day.
func writerWorks(t *testing.T, h *hostileDB) {
	t.Helper()
	ctx := context.Background()
	w := openAs(t, asUser(t, h.url, h.writerLogin), sink.Config{MaxConns: 2})
	if _, err := write(ctx, w, []*testObject{{Bucket: "bucket", Key: "w", Stream: &rows{items: []cloudtrail.Entry{
		event("new", time.Date(2024, 8, 5, 12, 0, 0, 0, time.UTC), "w"),
	}}}}); err != nil {
		t.Errorf("write as the writer: %v", err)
	}
	if _, err := w.Pool().Exec(ctx, `SELECT pgtrail_ensure_partition(date '2024-08-06')`); err != nil {
		t.Errorf("ensure a partition as the writer: %v", err)
	}
	if _, err := w.DropPartitionsBefore(ctx, hostileOld.AddDate(0, 0, 1), false); err != nil {
		t.Errorf("retention as the writer: %v", err)
	}
}

// checkIntact checks that every table, view and function of pgtrail is in
// place, that the stored rows are those expected, and that no planted
// function ran as the owner.
func checkIntact(t *testing.T, h *hostileDB, events ...string) {
	t.Helper()
	ctx := context.Background()
	for _, rel := range []string{"cloudtrail_events", "cloudtrail_objects", "cloudtrail_rejects",
		"pgtrail_schema_migrations", "ct_cis_findings", "cloudtrail_events_20240801", h.today} {
		var ok bool
		if err := h.owner.Pool().QueryRow(ctx, `SELECT pg_catalog.to_regclass($1::text) IS NOT NULL`, "public."+rel).Scan(&ok); err != nil || !ok {
			t.Errorf("%s is gone (%v)", rel, err)
		}
	}
	if n := count(t, h.owner, `SELECT count(*) FROM public.cloudtrail_objects WHERE s3_key = 'a'`); n != 1 {
		t.Errorf("ledger row of object a: %d, want 1", n)
	}
	if n := count(t, h.owner, `SELECT count(*) FROM public.cloudtrail_rejects`); n != 1 {
		t.Errorf("%d rejects, want 1", n)
	}
	rs, _ := h.owner.Pool().Query(ctx, `SELECT event_id FROM public.cloudtrail_events ORDER BY event_time`)
	got, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil || !slices.Equal(got, events) {
		t.Errorf("events %v (%v), want %v", got, err, events)
	}
	if ran := plantedRunAs(t, h)[h.ownerName]; len(ran) > 0 {
		t.Errorf("functions planted by the reader ran as the owner: %v", ran)
	}
}

// checkPrivileges checks what the reader and the writer may do to every
// relation and function of pgtrail, after whatever they tried: the reader
// only reads; the writer reads, inserts, and updates the ledger and the
// alerts' delivery state only (the alerts themselves: their delivery
// columns only, which has_table_privilege does not count), and runs the
// three SECURITY DEFINER functions of partitions and retention. No object
// of pgtrail belongs to either.
func checkPrivileges(t *testing.T, h *hostileDB) {
	t.Helper()
	ctx := context.Background()
	rs, _ := h.owner.Pool().Query(ctx, `
        SELECT r.login, c.relname::text, p.priv
        FROM pg_catalog.pg_class c
        CROSS JOIN (VALUES ($1::text, 'r'), ($2::text, 'w')) r(login, kind)
        CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(priv)
        WHERE c.relnamespace OPERATOR(pg_catalog.=) 'public'::regnamespace::oid
          AND c.relkind IN ('r', 'p', 'v', 'S')
          AND c.relowner OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $3)
          AND pg_catalog.has_table_privilege(r.login, c.oid, p.priv)
          AND NOT (r.kind = 'w' AND p.priv = 'INSERT' AND c.relname ~ '^(cloudtrail_events|cloudtrail_rejects|cloudtrail_objects|cloudtrail_failures|cloudtrail_alert|cloudtrail_digest|cloudtrail_activity$)')
          AND NOT (r.kind = 'w' AND p.priv = 'UPDATE' AND c.relname IN ('cloudtrail_objects', 'cloudtrail_failures', 'cloudtrail_alert_deliveries', 'cloudtrail_alert_summaries',
              'cloudtrail_digests', 'cloudtrail_digest_files'))
        UNION ALL
        SELECT r.login, p.proname::text, 'EXECUTE'
        FROM pg_catalog.pg_proc p
        CROSS JOIN (VALUES ($1::text), ($2::text)) r(login)
        WHERE p.pronamespace OPERATOR(pg_catalog.=) 'public'::regnamespace::oid AND p.proname ~ '^pgtrail_'
          -- Only a function that runs with its owner's rights can confer
          -- any; the lookup's derivations run with the caller's.
          AND p.prosecdef
          AND p.proowner OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $3)
          AND pg_catalog.has_function_privilege(r.login, p.oid, 'EXECUTE')
          AND NOT (r.login = $2 AND p.proname IN ('pgtrail_ensure_partition', 'pgtrail_drop_partitions_before', 'pgtrail_delete_alerts_before',
              'pgtrail_compact_activity', 'pgtrail_summarize_lookup_day'))
        ORDER BY 1, 2, 3`, h.readerLogin, h.writerLogin, h.ownerName)
	extra, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (string, error) {
		var who, obj, priv string
		err := r.Scan(&who, &obj, &priv)
		return who + ": " + priv + " on " + obj, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range extra {
		t.Errorf("a privilege beyond the role's: %s", e)
	}
	if n := count(t, h.owner, `SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner
        WHERE c.relnamespace OPERATOR(pg_catalog.=) 'public'::regnamespace::oid AND c.relname ~ '^(cloudtrail|ct_|pgtrail_schema)'
          AND r.rolname <> $1`, h.ownerName); n != 0 {
		t.Errorf("%d of pgtrail's relations belong to another role than the owner", n)
	}
}

// isDenied reports whether err is a refusal for want of privilege.
func isDenied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// TestWriterCannotHijackThroughTempSchema: a writer that shadows the
// catalog with temporary views cannot make pgtrail's functions drop or
// grant anything beyond retention.
func TestWriterCannotHijackThroughTempSchema(t *testing.T) {
	t.Parallel()
	h := newHostileDB(t, 0, sink.Config{})
	dropped, err := writerTempCatalogAttack(t, h)
	t.Logf("retention with a 1970 cutoff dropped %v (%v)", dropped, err)
	for _, d := range dropped {
		if d != "cloudtrail_events_19700101" {
			t.Errorf("retention with a 1970 cutoff dropped %s", d)
		}
	}

	c := writerTempACLAttack(t, h)
	for _, sql := range []string{
		`DELETE FROM cloudtrail_events_20240803`, `TRUNCATE cloudtrail_events_20240803`,
		`UPDATE cloudtrail_events_20240803 SET s3_key = 'x'`,
	} {
		denied(t, c, sql)
	}
	var created bool
	if err := c.QueryRow(context.Background(), `SELECT pgtrail_ensure_partition(date '2024-08-04')`).Scan(&created); err != nil || !created {
		t.Errorf("a partition whose name a temporary table shadows: created %v, %v; want created", created, err)
	}
	checkIntact(t, h, "old", "kept", "today")
	checkPrivileges(t, h)
}

// TestReaderCannotHijackThroughPublicSchema: where PUBLIC may create in
// schema public (PostgreSQL 14's default), functions a reader plants there
// never run as the owner, whether planted before the upgrade that makes
// pgtrail's functions safe or after it; where PUBLIC may not, the reader
// cannot plant them at all.
func TestReaderCannotHijackThroughPublicSchema(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		granted bool
		before  bool // planted before the latest migrations, then migrated
	}{
		{"public CREATE granted", true, false},
		{"public CREATE granted, planted before upgrading", true, true},
		{"public CREATE revoked", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			last := 0
			if c.before {
				last = 6
			}
			h := newHostileDB(t, last, sink.Config{})
			h.setPublicCreate(t, c.granted)
			err := plantFunctions(t, h)
			switch {
			case c.granted && err != nil:
				t.Fatalf("planting with PUBLIC CREATE granted: %v", err)
			case !c.granted && !isDenied(err):
				t.Fatalf("planting with PUBLIC CREATE revoked: %v; want permission denied", err)
			}
			if c.before {
				h.migrate(t, 0)
				// The owner of schema public (here a superuser) migrated:
				// PUBLIC may no longer create there.
				if n := count(t, h.owner, `SELECT count(*) WHERE pg_catalog.has_schema_privilege('public', 'public', 'CREATE')`); n != 0 {
					t.Error("PUBLIC may still create in schema public after migrating as its owner")
				}
			}
			writerWorks(t, h)
			t.Logf("planted functions ran as %v", plantedRunAs(t, h))
			checkIntact(t, h, "kept", "new", "today")
			checkPrivileges(t, h)
		})
	}
}

// TestHostileRolesStayWithinTheirGrants proves what migration 0005 says:
// the writer cannot drop, alter, truncate or delete, and the reader can
// only select, even when both try every trick above, with PUBLIC CREATE on
// schema public granted and revoked.
func TestHostileRolesStayWithinTheirGrants(t *testing.T) {
	t.Parallel()
	for _, granted := range []bool{true, false} {
		t.Run(fmt.Sprintf("public CREATE granted=%v", granted), func(t *testing.T) {
			t.Parallel()
			h := newHostileDB(t, 0, sink.Config{})
			h.setPublicCreate(t, granted)
			_ = plantFunctions(t, h)
			_, _ = writerTempCatalogAttack(t, h)
			w := writerTempACLAttack(t, h)
			writerWorks(t, h)

			r := h.as(t, h.readerLogin)
			for _, c := range []*pgx.Conn{w, r} {
				for _, tbl := range []string{"cloudtrail_events", "cloudtrail_rejects", "cloudtrail_objects",
					"pgtrail_schema_migrations", h.today, "cloudtrail_events_20240801", "cloudtrail_events_20240805"} {
					denied(t, c, "DROP TABLE "+tbl)
					denied(t, c, "ALTER TABLE "+tbl+" ADD COLUMN x int")
					denied(t, c, "TRUNCATE "+tbl)
					denied(t, c, "DELETE FROM "+tbl)
				}
				denied(t, c, "ALTER TABLE cloudtrail_events DETACH PARTITION "+h.today)
				denied(t, c, "DROP VIEW ct_cloudtrail_changes")
				denied(t, c, "DROP FUNCTION pgtrail_drop_partitions_before(date, boolean)")
				denied(t, c, "DROP FUNCTION pgtrail_delete_alerts_before(date, boolean)")
				denied(t, c, "ALTER FUNCTION pgtrail_ensure_partition(date) SECURITY INVOKER")
			}
			denied(t, r, `SELECT pgtrail_ensure_partition('2024-08-09')`)
			denied(t, r, `SELECT * FROM pgtrail_drop_partitions_before('2016-03-01', true)`)
			denied(t, r, `SELECT * FROM pgtrail_delete_alerts_before('2016-03-01', true)`)
			denied(t, r, `INSERT INTO cloudtrail_objects (s3_bucket, s3_key, size, events, inserted, duplicates, rejected)
                VALUES ('b', 'k', 0, 0, 0, 0, 0)`)
			denied(t, r, `UPDATE cloudtrail_objects SET deliveries = 0`)

			checkIntact(t, h, "kept", "new", "today")
			checkPrivileges(t, h)
		})
	}
}

// TestSecurityDefinerFunctionsAreSafe checks every SECURITY DEFINER
// function of the schema: its search_path is pg_catalog, then pg_temp, and
// nothing else; PUBLIC may not execute it.
func TestSecurityDefinerFunctionsAreSafe(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	rs, _ := pg.Pool().Query(context.Background(), `
        SELECT p.oid::regprocedure::text, coalesce(pg_catalog.array_to_string(p.proconfig, '; '), ''),
            pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.current_schema()::regnamespace::oid AND p.prosecdef
        ORDER BY 1`)
	type fn struct {
		Name, Config string
		Public       bool
	}
	fns, err := pgx.CollectRows(rs, pgx.RowToStructByPos[fn])
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 6 {
		t.Errorf("SECURITY DEFINER functions: %v; want pgtrail_ensure_partition, pgtrail_drop_partitions_before, pgtrail_delete_alerts_before, pgtrail_compact_activity, pgtrail_summarize_lookup_day and pgtrail_forget_lookup_summary", fns)
	}
	for _, f := range fns {
		if !strings.Contains("; "+f.Config+";", "; search_path=pg_catalog, pg_temp;") {
			t.Errorf("%s: settings %q; want search_path=pg_catalog, pg_temp", f.Name, f.Config)
		}
		if f.Public {
			t.Errorf("%s: PUBLIC may execute it", f.Name)
		}
	}
}
