package sink_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// uniqueName returns prefix and a random suffix: roles belong to the whole
// server, so every test needs names of its own.
func uniqueName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// asUser returns dbURL with user in place of its user.
func asUser(t *testing.T, dbURL, user string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

// admin runs sql as the test server's superuser, in the server's default
// database.
func admin(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// dropRolesAtEnd drops the roles when the test ends. Call it before
// pgtest.New so that it runs after the database that holds their
// privileges is gone.
func dropRolesAtEnd(t *testing.T, roles ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pgtest.ServerURL())
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close(ctx)
		for _, r := range roles {
			// A closed session may still be dropping its temporary staging
			// table, which depends on its role, for a moment.
			for {
				_, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "2BP01" && ctx.Err() == nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if err != nil {
					t.Errorf("drop role %s: %v", r, err)
				}
				break
			}
		}
	})
}

// loginRole creates a login role that is a member of group and returns
// dbURL for it. Trust authentication lets it in without a password.
func loginRole(t *testing.T, dbURL, group string) string {
	t.Helper()
	name := uniqueName("pgtrail_login_")
	admin(t, "CREATE ROLE "+name+" LOGIN IN ROLE "+pgx.Identifier{group}.Sanitize())
	dropRolesAtEnd(t, name)
	return asUser(t, dbURL, name)
}

// connect opens a plain connection, closed when the test ends.
func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// denied asserts that sql fails for want of privilege.
func denied(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	_, err := c.Exec(context.Background(), sql)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && !strings.HasPrefix(pgErr.Message, "must be owner")) {
		t.Errorf("%s: got %v, want permission denied", sql, err)
	}
}

// allowed asserts that sql succeeds.
func allowed(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Errorf("%s: %v", sql, err)
	}
}

func openAs(t *testing.T, dbURL string, cfg sink.Config) *sink.Postgres {
	t.Helper()
	cfg.URL = dbURL
	pg, err := sink.Open(context.Background(), cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return pg
}

var readable = []string{
	"cloudtrail_events", "cloudtrail_rejects", "cloudtrail_objects", "pgtrail_schema_migrations",
	"pgtrail_retention_floor", "ct_cis_findings", "ct_unauthorized_calls", "ct_console_logins_without_mfa", "ct_root_account_usage",
	"ct_iam_policy_changes", "ct_cloudtrail_changes", "ct_console_login_failures",
	"ct_kms_key_disabled_or_deleted", "ct_s3_bucket_policy_changes", "ct_config_changes",
	"ct_security_group_changes", "ct_nacl_changes", "ct_network_gateway_changes", "ct_route_table_changes",
	"ct_vpc_changes", "ct_organizations_changes",
	"cloudtrail_alerts", "cloudtrail_alert_deliveries", "cloudtrail_alert_summaries",
	"ct_open_alerts_by_rule", "ct_open_alerts_by_principal", "ct_open_alerts_by_account",
	"cloudtrail_digests", "cloudtrail_digest_files", "ct_integrity_files", "ct_integrity_digests",
	"cloudtrail_activity", "pgtrail_lookup_summaries",
}

func TestReaderCanOnlyRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.New(t)
	pg := openAs(t, dbURL, sink.Config{})
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 8, 1, 13, 0, 0, 0, time.UTC)
	if _, err := write(ctx, pg, []*testObject{{Bucket: "bucket", Key: "a", Stream: &rows{items: []cloudtrail.Entry{
		event("e1", day, "a"),
		{Reject: &cloudtrail.Reject{S3Bucket: "bucket", S3Key: "a", Index: 1, Reason: "eventTime missing", Raw: "{}"}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	rs, _ := pg.Pool().Query(ctx, `SELECT viewname FROM pg_views WHERE viewname LIKE 'ct\_%' ORDER BY 1`)
	views, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		found := false
		for _, r := range readable {
			found = found || r == v
		}
		if !found {
			t.Errorf("view %s is not in the test's list of what the reader may read", v)
		}
	}

	c := connect(t, loginRole(t, dbURL, sink.DefaultReaderRole))
	for _, rel := range readable {
		allowed(t, c, "SELECT * FROM "+rel+" LIMIT 1")
	}
	// A partition, made after the grants, is readable directly too.
	allowed(t, c, "SELECT count(*) FROM cloudtrail_events_20240801")

	for tbl, col := range map[string]string{
		"cloudtrail_events": "s3_key", "cloudtrail_events_20240801": "s3_key", "cloudtrail_rejects": "reason",
		"cloudtrail_objects": "s3_key", "pgtrail_schema_migrations": "name",
	} {
		denied(t, c, "UPDATE "+tbl+" SET "+col+" = 'x'")
		denied(t, c, "DELETE FROM "+tbl)
		denied(t, c, "TRUNCATE "+tbl)
		denied(t, c, "DROP TABLE "+tbl)
	}
	denied(t, c, `INSERT INTO cloudtrail_events (event_id, event_time, record, s3_bucket, s3_key)
        VALUES ('x', '2024-08-01T10:00:00Z', '{}', 'b', 'k')`)
	denied(t, c, `INSERT INTO cloudtrail_rejects (s3_bucket, s3_key, record_index, reason, raw) VALUES ('b', 'k', 0, 'r', 'x')`)
	denied(t, c, `INSERT INTO cloudtrail_objects (s3_bucket, s3_key, size, events, inserted, duplicates, rejected)
        VALUES ('b', 'k', 0, 0, 0, 0, 0)`)
	denied(t, c, `SELECT pgtrail_ensure_partition('2024-08-02')`)
	denied(t, c, `SELECT * FROM pgtrail_drop_partitions_before('2024-08-02', true)`)
	denied(t, c, `CREATE TABLE mine (x int)`)
	denied(t, c, `CREATE VIEW mine AS SELECT 1`)
	denied(t, c, `ALTER TABLE cloudtrail_events ADD COLUMN x int`)
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 1 {
		t.Errorf("%d events after the reader's attempts, want 1", n)
	}

	// Through the parent, the parent's privilege is all it takes: without
	// its own grant, the partition is still read that way.
	if _, err := pg.Pool().Exec(ctx, `REVOKE SELECT ON cloudtrail_events_20240801 FROM `+sink.DefaultReaderRole); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM cloudtrail_events WHERE event_time >= '2024-08-01'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("through the parent: %d, %v; want 1", n, err)
	}
	denied(t, c, "SELECT count(*) FROM cloudtrail_events_20240801")
}

func TestWriterWritesButCannotDropOrAlter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.New(t)
	owner := openAs(t, dbURL, sink.Config{})
	if _, err := owner.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	writerURL := loginRole(t, dbURL, sink.DefaultWriterRole)
	pg := openAs(t, writerURL, sink.Config{MaxConns: 4})
	// With the schema current, Migrate works for the writer: it changes
	// nothing and needs no CREATE privilege.
	if applied, err := pg.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Fatalf("Migrate as the writer: %v, %v; want nothing applied", applied, err)
	}
	old := time.Date(2016, 2, 29, 23, 0, 0, 0, time.UTC)
	now := time.Now().UTC()
	obj := func(key string) *testObject {
		return &testObject{Bucket: "bucket", Key: key, Stream: &rows{items: []cloudtrail.Entry{
			event("e1", old, key), event("e2", now, key),
			{Reject: &cloudtrail.Reject{S3Bucket: "bucket", S3Key: key, Index: 2, Reason: "eventTime missing", Raw: "{}"}},
		}}}
	}
	for range 2 { // the second time: duplicates and a ledger update
		if _, err := write(ctx, pg, []*testObject{obj("a")}); err != nil {
			t.Fatalf("Write as the writer: %v", err)
		}
	}
	// Objects decoded ahead take another path: COPY straight into
	// cloudtrail_events, after a probe for duplicates.
	for range 2 {
		if _, err := write(ctx, pg, []*testObject{{Bucket: "bucket", Key: "b", Entries: []cloudtrail.Entry{
			event("e3", old.AddDate(0, 0, 1), "b"), event("e2", now, "b"),
		}}}); err != nil {
			t.Fatalf("buffered Write as the writer: %v", err)
		}
	}
	if ok, err := pg.Processed(ctx, "bucket", "a"); err != nil || !ok {
		t.Errorf("Processed as the writer = %v, %v", ok, err)
	}
	if n := count(t, owner, `SELECT deliveries FROM cloudtrail_objects WHERE s3_key = 'a'`); n != 2 {
		t.Errorf("ledger deliveries %d, want 2", n)
	}
	if n := count(t, owner, `SELECT count(*) FROM cloudtrail_rejects`); n != 1 {
		t.Errorf("%d rejects, want 1", n)
	}
	dropped, err := pg.DropPartitionsBefore(ctx, old.AddDate(0, 0, 1), false)
	if err != nil || len(dropped) != 1 || dropped[0].Name != "cloudtrail_events_20160229" {
		t.Errorf("retention as the writer dropped %+v, %v; want cloudtrail_events_20160229", dropped, err)
	}

	c := connect(t, writerURL)
	for _, tbl := range []string{"cloudtrail_events", "cloudtrail_rejects", "cloudtrail_objects", "pgtrail_schema_migrations"} {
		denied(t, c, "DROP TABLE "+tbl)
		denied(t, c, "ALTER TABLE "+tbl+" ADD COLUMN x int")
		denied(t, c, "TRUNCATE "+tbl)
		denied(t, c, "DELETE FROM "+tbl)
	}
	part := "cloudtrail_events_" + now.Format("20060102")
	denied(t, c, "DROP TABLE "+part)
	denied(t, c, "DELETE FROM "+part)
	denied(t, c, "ALTER TABLE cloudtrail_events DETACH PARTITION "+part)
	denied(t, c, "UPDATE cloudtrail_events SET s3_key = 'x'")
	denied(t, c, "UPDATE cloudtrail_rejects SET reason = 'x'")
	denied(t, c, "DROP VIEW ct_cloudtrail_changes")
	denied(t, c, "DROP FUNCTION pgtrail_ensure_partition(date)")
	denied(t, c, "CREATE TABLE cloudtrail_events_20991231 PARTITION OF cloudtrail_events FOR VALUES FROM ('2099-12-31') TO ('2100-01-01')")
	denied(t, c, "CREATE TABLE mine (x int)")
	if n := count(t, owner, `SELECT count(*) FROM cloudtrail_events`); n != 2 {
		t.Errorf("%d events after the writer's attempts, want 2", n)
	}
}

// TestMigrateAsNonSuperuser migrates as an owner that is no superuser but
// may create roles, as on Amazon RDS, with role names of its own.
func TestMigrateAsNonSuperuser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ownerRole := uniqueName("pgtrail_owner_")
	reader, writer := ownerRole+"_r", ownerRole+"_w"
	dropRolesAtEnd(t, reader, writer, ownerRole)
	admin(t, "CREATE ROLE "+ownerRole+" LOGIN CREATEROLE")
	dbURL := pgtest.New(t)
	u, _ := url.Parse(dbURL)
	admin(t, "ALTER DATABASE "+pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()+" OWNER TO "+ownerRole)

	pg := openAs(t, asUser(t, dbURL, ownerRole), sink.Config{ReaderRole: reader, WriterRole: writer})
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatalf("migrate as a non-superuser: %v", err)
	}
	if _, err := write(ctx, pg, []*testObject{{Bucket: "b", Key: "k", Stream: &rows{items: []cloudtrail.Entry{event("e1", time.Now(), "k")}}}}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pg, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'cloudtrail\_%' AND tableowner <> current_user`); n != 0 {
		t.Errorf("%d tables not owned by the migrating role", n)
	}
	w := openAs(t, loginRole(t, dbURL, writer), sink.Config{})
	if _, err := write(ctx, w, []*testObject{{Bucket: "b", Key: "k2", Stream: &rows{items: []cloudtrail.Entry{event("e2", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "k2")}}}}); err != nil {
		t.Fatalf("write as %s: %v", writer, err)
	}
	c := connect(t, loginRole(t, dbURL, reader))
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM cloudtrail_events`).Scan(&n); err != nil || n != 2 {
		t.Errorf("reader counts %d, %v; want 2", n, err)
	}
	denied(t, c, "DELETE FROM cloudtrail_events")
}

// TestMigrateWithoutCreateRole: an owner that may not create roles gets a
// clear error, and migrates once an administrator has created them.
func TestMigrateWithoutCreateRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ownerRole := uniqueName("pgtrail_owner_")
	reader, writer := ownerRole+"_r", ownerRole+"_w"
	dropRolesAtEnd(t, reader, writer, ownerRole)
	admin(t, "CREATE ROLE "+ownerRole+" LOGIN")
	dbURL := pgtest.New(t)
	u, _ := url.Parse(dbURL)
	admin(t, "ALTER DATABASE "+pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()+" OWNER TO "+ownerRole)

	pg := openAs(t, asUser(t, dbURL, ownerRole), sink.Config{ReaderRole: reader, WriterRole: writer})
	_, err := pg.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "cannot create role "+reader) || !strings.Contains(err.Error(), "CREATE ROLE "+reader+" NOLOGIN") {
		t.Fatalf("migrate without CREATEROLE: %v; want a clear error", err)
	}
	admin(t, "CREATE ROLE "+reader+" NOLOGIN; CREATE ROLE "+writer+" NOLOGIN")
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatalf("migrate once the roles exist: %v", err)
	}
	c := connect(t, loginRole(t, dbURL, reader))
	allowed(t, c, "SELECT count(*) FROM ct_cis_findings")
}

// TestMigrateRolesAcrossDatabases migrates several databases of one server
// at once, all creating the same new roles: none may fail.
func TestMigrateRolesAcrossDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := uniqueName("pgtrail_race_")
	reader, writer := base+"_r", base+"_w"
	dropRolesAtEnd(t, reader, writer)
	const n = 6
	urls := make([]string, n)
	for i := range urls {
		urls[i] = pgtest.New(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pg, err := sink.Open(ctx, sink.Config{URL: u, MaxConns: 2, ReaderRole: reader, WriterRole: writer}, zaptest.NewLogger(t))
			if err != nil {
				errs[i] = err
				return
			}
			defer pg.Close()
			_, errs[i] = pg.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("database %d: %v", i, err)
		}
	}
}

// TestMigrateWarnsWhileOthersMayCreate migrates as a non-superuser that
// does not own schema public, where PUBLIC may create (PostgreSQL 14's
// default): migration 0007 cannot revoke that, and every Migrate warns,
// naming who may create, until the schema's owner revokes it.
func TestMigrateWarnsWhileOthersMayCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ownerRole := uniqueName("pgtrail_owner_")
	reader, writer := ownerRole+"_r", ownerRole+"_w"
	dropRolesAtEnd(t, reader, writer, ownerRole)
	admin(t, "CREATE ROLE "+ownerRole+" LOGIN CREATEROLE")
	dbURL := pgtest.New(t)
	u, _ := url.Parse(dbURL)
	admin(t, "ALTER DATABASE "+pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()+" OWNER TO "+ownerRole)
	super := connect(t, dbURL)
	allowed(t, super, "ALTER SCHEMA public OWNER TO CURRENT_USER; GRANT CREATE ON SCHEMA public TO PUBLIC")

	core, logs := observer.New(zap.WarnLevel)
	pg, err := sink.Open(ctx, sink.Config{URL: asUser(t, dbURL, ownerRole), ReaderRole: reader, WriterRole: writer}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	for _, revoked := range []bool{false, true} {
		if revoked {
			allowed(t, super, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
		}
		if _, err := pg.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		var warned []observer.LoggedEntry
		for _, e := range logs.TakeAll() {
			if strings.Contains(e.Message, "may create objects in pgtrail's schema") {
				warned = append(warned, e)
			}
		}
		switch {
		case !revoked && (len(warned) != 1 || fmt.Sprint(warned[0].ContextMap()["roles"]) != fmt.Sprint([]any{"public", reader, writer})):
			t.Errorf("PUBLIC may create: warnings %v; want one naming public, %s and %s", warned, reader, writer)
		case revoked && len(warned) != 0:
			t.Errorf("PUBLIC's CREATE revoked: warnings %v; want none", warned)
		}
	}
}
