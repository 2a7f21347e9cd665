-- pgtrail's SECURITY DEFINER functions, pgtrail_ensure_partition and
-- pgtrail_drop_partitions_before, recreated safe by construction, after
-- PostgreSQL's "Writing SECURITY DEFINER Functions Safely":
--
--  * Their search_path is pg_catalog, pg_temp: the system catalog first and
--    the caller's temporary schema explicitly last. Before, it was the
--    migrating session's ("$user", public) without pg_temp, which PostgreSQL
--    then searches first: a writer's temporary views named pg_class and
--    pg_inherits made retention drop any table, and functions that anyone
--    may create in schema public (PostgreSQL 14's default) ran with the
--    owner's rights when they matched a call better than pg_catalog's own
--    (to_char(date, text), say).
--  * Every pgtrail object they use is schema-qualified with the schema this
--    migration runs in, which the function text carries as a constant; every
--    catalog table is named pg_catalog.x. Functions and operators are never
--    looked up in pg_temp, so with this search_path every builtin they call
--    comes from pg_catalog.
--  * Their signatures are unchanged, so that CREATE OR REPLACE keeps their
--    owner and grants: EXECUTE for the writer only, or none if an
--    administrator revoked it.
--
-- pgtrail_drop_partitions_before also honours the retention floor: a
-- one-row table, pgtrail_retention_floor, that only the owner may write
-- (pgtrail migrate records PGTRAIL_RETENTION_DAYS there); it refuses any
-- caller a cutoff later than today minus that many days, so that a stolen
-- writer credential cannot drop more than retention allows.
--
-- The migration itself runs as the owner: its block resolves nothing
-- through the schema either, so that nothing planted there runs now.
--
-- Finally, where the migrating role owns the schema (or is a superuser),
-- it revokes CREATE on the schema from PUBLIC, as PostgreSQL 15 does for
-- schema public in a new database: a role that may create functions in
-- the schema that pgtrail's sessions search can make them run its code.
-- Roles that need to create objects there must then be granted CREATE by
-- name. Where it may not, it warns; pgtrail migrate also warns at each run
-- while PUBLIC, the reader or the writer may create there.
DO $migration$
DECLARE
    s constant text := pg_catalog.current_schema();
    path constant text := pg_catalog.current_setting('search_path');
    body text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF s IS NULL OR to_regclass(format('%I.cloudtrail_events', s)) IS NULL THEN
        RAISE EXCEPTION 'pgtrail: cloudtrail_events is not in schema %, the first of the search_path (%)', s, path
            USING HINT = 'Migrate with the search_path that created pgtrail''s tables.';
    END IF;

    -- pgtrail_ensure_partition: as in 0002_partitions.sql, with every name
    -- qualified. @schema@ becomes the schema's name, as a literal.
    body := $body$
DECLARE
    sch constant text := @schema@;
    events constant regclass := format('%I.cloudtrail_events', sch)::regclass;
    part constant text := 'cloudtrail_events_' || to_char(day::timestamp, 'YYYYMMDD')
                          || CASE WHEN day < date '0001-01-01' THEN '_bc' ELSE '' END;
    qpart constant text := format('%I.%I', sch, part);
    lo constant timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi constant timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    rel regclass;
    g record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pgtrail.partition'));
    rel := to_regclass(qpart);
    IF rel IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_inherits WHERE inhrelid = rel AND inhparent = events) THEN
            RAISE EXCEPTION 'pgtrail: table % exists but is not a partition of cloudtrail_events', qpart
                USING HINT = 'Attach it (ALTER TABLE cloudtrail_events ATTACH PARTITION …) or rename it.';
        END IF;
        RETURN false;
    END IF;
    -- A regclass prints schema-qualified here: no schema of pgtrail is on
    -- this function's search_path.
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION,
                        CONSTRAINT pgtrail_bound CHECK (event_time >= %L AND event_time < %L))',
        qpart, events, lo, hi);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)', events, qpart, lo, hi);
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT pgtrail_bound', qpart);
    FOR g IN
        SELECT a.privilege_type, a.grantee
        FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = events AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON %s TO %s', g.privilege_type, qpart,
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
    RETURN true;
EXCEPTION
    WHEN invalid_object_definition THEN
        IF SQLERRM LIKE '%would overlap partition%' THEN
            RETURN false;
        END IF;
        RAISE;
END
$body$;
    EXECUTE format($ddl$CREATE OR REPLACE FUNCTION %I.pgtrail_ensure_partition(day date) RETURNS boolean
        LANGUAGE plpgsql STRICT SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp SET timezone = 'UTC' SET datestyle = 'ISO, YMD'
        AS %L$ddl$, s, replace(body, '@schema@', quote_literal(s)));

    -- The retention floor: at most one row, which only the owner may write.
    -- pgtrail migrate records PGTRAIL_RETENTION_DAYS there when it runs as
    -- the owner with retention set; no row means no floor.
    EXECUTE format($ddl$CREATE TABLE %I.pgtrail_retention_floor (
        only_row    boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
        days        integer     NOT NULL CHECK (days BETWEEN 1 AND 36500),
        recorded_at timestamptz NOT NULL DEFAULT now())$ddl$, s);
    EXECUTE format($ddl$COMMENT ON TABLE %I.pgtrail_retention_floor IS
        'The retention floor: pgtrail_drop_partitions_before refuses, whoever calls it, a cutoff less than this many days before today (UTC).'$ddl$, s);
    EXECUTE format('GRANT SELECT ON %I.pgtrail_retention_floor TO %I, %I', s,
        coalesce(nullif(current_setting('pgtrail.reader_role', true), ''), 'pgtrail_reader'),
        coalesce(nullif(current_setting('pgtrail.writer_role', true), ''), 'pgtrail_writer'));

    -- pgtrail_drop_partitions_before: as in 0002_partitions.sql, with every
    -- name qualified, and the retention floor.
    body := $body$
DECLARE
    sch constant text := @schema@;
    events constant regclass := format('%I.cloudtrail_events', sch)::regclass;
    limit_ts constant timestamptz := cutoff::timestamp AT TIME ZONE 'UTC';
    today constant date := (now() AT TIME ZONE 'UTC')::date;
    floor_days integer;
    p record;
BEGIN
    IF cutoff > today THEN
        RAISE EXCEPTION 'pgtrail: retention cutoff % is after today (UTC); refusing to drop current partitions', cutoff;
    END IF;
    EXECUTE format('SELECT days FROM %I.pgtrail_retention_floor', sch) INTO floor_days;
    IF floor_days IS NOT NULL AND cutoff > today - floor_days THEN
        RAISE EXCEPTION 'pgtrail: retention cutoff % is after %, the retention floor of % days (UTC); refusing to drop younger partitions',
                cutoff, today - floor_days, floor_days
            USING HINT = 'The owner sets the floor: pgtrail migrate with PGTRAIL_RETENTION_DAYS (docs/analysts.md).';
    END IF;
    FOR p IN
        SELECT c.oid::regclass AS rel, c.relname::text AS name, c.reltuples, b.m[1]::timestamptz AS lo, b.m[2]::timestamptz AS hi
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                                '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') AS m) b
        WHERE i.inhparent = events
          AND b.m IS NOT NULL -- not DEFAULT, not MINVALUE/MAXVALUE
          AND b.m[2]::timestamptz <= limit_ts
        ORDER BY b.m[2]::timestamptz
    LOOP
        IF NOT dry_run THEN
            EXECUTE format('DROP TABLE %s', p.rel); -- schema-qualified, as above
        END IF;
        partition_name := p.name;
        range_start := p.lo;
        range_end := p.hi;
        approx_rows := greatest(p.reltuples, -1)::bigint;
        RETURN NEXT;
    END LOOP;
END
$body$;
    EXECUTE format($ddl$CREATE OR REPLACE FUNCTION %I.pgtrail_drop_partitions_before(cutoff date, dry_run boolean DEFAULT false)
        RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, approx_rows bigint)
        LANGUAGE plpgsql STRICT SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp SET timezone = 'UTC' SET datestyle = 'ISO, YMD'
        AS %L$ddl$, s, replace(body, '@schema@', quote_literal(s)));

    -- As in 0005_roles.sql; the writer's grants stay as they are.
    EXECUTE format('REVOKE ALL ON FUNCTION %I.pgtrail_ensure_partition(date) FROM PUBLIC', s);
    EXECUTE format('REVOKE ALL ON FUNCTION %I.pgtrail_drop_partitions_before(date, boolean) FROM PUBLIC', s);

    -- CREATE on the schema: PUBLIC's goes where the migrating role may
    -- revoke it.
    IF has_schema_privilege('public', s, 'CREATE')
       AND pg_has_role((SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = s), 'USAGE') THEN
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', s);
        RAISE NOTICE 'pgtrail: revoked CREATE on schema % from PUBLIC', s
            USING HINT = format('Roles that create objects there need GRANT CREATE ON SCHEMA %I TO the role.', s);
    END IF;
    IF has_schema_privilege('public', s, 'CREATE') THEN
        RAISE WARNING 'pgtrail: every role may create objects in schema %, which pgtrail''s sessions search', s
            USING HINT = format('Have the schema''s owner run REVOKE CREATE ON SCHEMA %I FROM PUBLIC (docs/analysts.md).', s);
    END IF;

    PERFORM set_config('search_path', path, true);
END
$migration$;
