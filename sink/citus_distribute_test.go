package sink_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// citusStub stands in for Citus on plain PostgreSQL, in schema citus_stub:
// pg_dist_partition, and create_distributed_table, create_reference_table
// and column_to_column_name with Citus's signatures, which record their
// calls there and refuse what Citus refuses of pgtrail's tables: a unique
// key without the distribution column, a column that does not exist, a
// partition distributed by itself, a table distributed twice, colocation
// with a table that is not distributed or whose column is of another type.
const citusStub = `
CREATE SCHEMA citus_stub;
CREATE TABLE citus_stub.pg_dist_partition (
    logicalrelid regclass PRIMARY KEY, partmethod "char" NOT NULL, partkey text, colocated text,
    called serial);
CREATE FUNCTION citus_stub.create_distributed_table(table_name regclass, distribution_column text,
        distribution_type text DEFAULT 'hash', colocate_with text DEFAULT 'default', shard_count integer DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    col pg_attribute;
    other regtype;
BEGIN
    SELECT * INTO col FROM pg_attribute WHERE attrelid = table_name AND attname = distribution_column AND NOT attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', distribution_column, table_name;
    END IF;
    IF EXISTS (SELECT FROM citus_stub.pg_dist_partition WHERE logicalrelid = table_name) THEN
        RAISE EXCEPTION 'table "%" is already distributed', table_name;
    END IF;
    IF EXISTS (SELECT FROM pg_inherits WHERE inhrelid = table_name) THEN
        RAISE EXCEPTION 'cannot distribute relation "%" which is partition of another table', table_name;
    END IF;
    IF EXISTS (SELECT FROM pg_index WHERE indrelid = table_name AND (indisunique OR indisexclusion)
                                      AND NOT col.attnum = ANY(indkey::int2[])) THEN
        RAISE EXCEPTION 'cannot create constraint on "%"', table_name
            USING DETAIL = 'Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column (with an equality operator if EXCLUDE).';
    END IF;
    IF colocate_with NOT IN ('default', 'none') THEN
        SELECT a.atttypid::regtype INTO other FROM citus_stub.pg_dist_partition d
        JOIN pg_attribute a ON a.attrelid = d.logicalrelid AND a.attname = d.partkey
        WHERE d.logicalrelid = colocate_with::regclass AND d.partmethod = 'h';
        IF other IS NULL THEN
            RAISE EXCEPTION 'relation % should be a hash distributed table', colocate_with;
        ELSIF other <> col.atttypid::regtype THEN
            RAISE EXCEPTION 'cannot colocate tables % and %', colocate_with, table_name
                USING DETAIL = 'Distribution column types don''t match.';
        END IF;
    END IF;
    INSERT INTO citus_stub.pg_dist_partition (logicalrelid, partmethod, partkey, colocated)
        VALUES (table_name, 'h', distribution_column, colocate_with);
END
$$;
CREATE FUNCTION citus_stub.create_reference_table(table_name regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM citus_stub.pg_dist_partition WHERE logicalrelid = table_name) THEN
        RAISE EXCEPTION 'table "%" is already distributed', table_name;
    END IF;
    INSERT INTO citus_stub.pg_dist_partition (logicalrelid, partmethod) VALUES (table_name, 'n');
END
$$;
CREATE FUNCTION citus_stub.column_to_column_name(table_name regclass, column_var_text text) RETURNS text
    LANGUAGE sql AS $$ SELECT column_var_text $$;
`

// setupCitusStub returns a sink on a database migrated up to version last,
// with citusStub on its search_path and a row for citus in pg_extension,
// as CREATE EXTENSION citus would leave.
func setupCitusStub(t *testing.T, last int) *sink.Postgres {
	t.Helper()
	ctx := context.Background()
	url := pgtest.New(t)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, citusStub+`;
        INSERT INTO pg_extension (oid, extname, extowner, extnamespace, extrelocatable, extversion)
        VALUES (pg_nextoid('pg_extension', 'oid', 'pg_extension_oid_index'), 'citus', 10, 'citus_stub'::regnamespace, false, '13.2');
        DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, citus_stub', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	pg, err := sink.Open(ctx, sink.Config{URL: url}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	if _, err := pg.MigrateTo(ctx, last); err != nil {
		t.Fatal(err)
	}
	return pg
}

// distributed returns the stub's record of the layout, in call order:
// "table by column, colocated with x" or "table (reference)".
func distributed(t *testing.T, pg *sink.Postgres) []string {
	t.Helper()
	rows, _ := pg.Pool().Query(context.Background(), `SELECT logicalrelid::text, partkey, colocated FROM citus_stub.pg_dist_partition ORDER BY called`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var table string
		var col, with *string
		err := r.Scan(&table, &col, &with)
		if col == nil {
			return table + " (reference)", err
		}
		return table + " by " + *col + ", colocated with " + *with, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDistributeLayout runs migrations/citus/distribute.sql against the
// stub: the tables are distributed, by the columns and with the colocation
// of docs/scaling.md, every table of pgtrail's is laid out, and running it
// again changes nothing.
func TestDistributeLayout(t *testing.T) {
	t.Parallel()
	pg := setupCitusStub(t, 1<<30)
	ctx := context.Background()
	// A partition with rows: Citus distributes it with its parent.
	if _, err := pg.Pool().Exec(ctx, `SELECT pgtrail_ensure_partition(date '2024-05-01')`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := pg.Distribute(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"cloudtrail_objects by s3_key, colocated with none",
		"cloudtrail_rejects by s3_key, colocated with cloudtrail_objects",
		"cloudtrail_failures by s3_key, colocated with cloudtrail_objects",
		"cloudtrail_digest_files by s3_key, colocated with cloudtrail_objects",
		"cloudtrail_digests by s3_key, colocated with cloudtrail_objects",
		"cloudtrail_events by event_id, colocated with cloudtrail_objects",
		"pgtrail_schema_migrations (reference)",
		"pgtrail_retention_floor (reference)",
		"cloudtrail_alerts (reference)",
		"cloudtrail_alert_deliveries (reference)",
		"cloudtrail_alert_summaries (reference)",
		"cloudtrail_activity (reference)",
		"pgtrail_lookup_summaries (reference)",
	}
	if got := distributed(t, pg); !slices.Equal(got, want) {
		t.Errorf("layout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Every table in pgtrail's schema, but for the partitions, is laid
	// out: a table added by a later migration must be added to
	// distribute.sql.
	rows, _ := pg.Pool().Query(ctx, `SELECT c.relname::text FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND NOT EXISTS (SELECT FROM citus_stub.pg_dist_partition d WHERE d.logicalrelid = c.oid)`)
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("tables that migrations/citus/distribute.sql leaves on the coordinator alone: %v", left)
	}
}

// TestDistributeRefusesRejectsKeyBefore0012: with cloudtrail_rejects' key
// as it was before 0012, the stub refuses as Citus did, and no table is
// distributed: the layout is one transaction.
func TestDistributeRefusesRejectsKeyBefore0012(t *testing.T) {
	t.Parallel()
	pg := setupCitusStub(t, 11)
	err := pg.Distribute(context.Background())
	if err == nil || !strings.Contains(err.Error(), `cannot create constraint on "cloudtrail_rejects"`) {
		t.Fatalf("distribute before 0012: %v; want the unique-key refusal for cloudtrail_rejects", err)
	}
	if got := distributed(t, pg); len(got) != 0 {
		t.Errorf("distributed after the refusal: %v", got)
	}
}

// TestDistributeRefusesWithoutCitus: without the citus extension,
// Distribute says so, naming PGTRAIL_CITUS, before it runs any of the
// layout's SQL (which would fail on pg_dist_partition, unknown here).
func TestDistributeRefusesWithoutCitus(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	if ok, err := pg.CitusInstalled(ctx); err != nil || ok {
		t.Fatalf("CitusInstalled = %v, %v on plain PostgreSQL", ok, err)
	}
	err := pg.Distribute(ctx)
	if err == nil || !strings.Contains(err.Error(), "citus extension is not installed") || !strings.Contains(err.Error(), "PGTRAIL_CITUS") {
		t.Fatalf("distribute without citus: %v", err)
	}
}
