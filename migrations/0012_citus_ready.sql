-- What pgtrail's schema needs to be distributed with Citus (docs/scaling.md),
-- each change valid and equivalent on plain PostgreSQL. The distribution
-- itself is a separate, explicit step (migrations/citus/distribute.sql).
--
-- 1. cloudtrail_rejects' primary key becomes its natural key, (s3_bucket,
--    s3_key, record_index), which was UNIQUE already: Citus distributes a
--    table only if every unique key includes the distribution column, and
--    rejects are distributed by s3_key, beside the ledger. The rows stay as
--    they are (the natural key was unique already, so none can clash). id
--    stays, an identity column as before, still filled by the sequence and
--    indexed (not unique) for "the latest reject" (pgtrail status). Every
--    insert names the natural key's conflict, ON CONFLICT DO NOTHING, as
--    before: nothing else changes for the writer or analysts.
--
-- 2. pgtrail_ensure_partition sets, on Citus only, citus.multi_shard_modify_mode
--    to sequential for the rest of its transaction (which the writer gives it
--    alone: ensurePartitions calls it outside the write's transaction). Its
--    CREATE TABLE and ATTACH PARTITION then create the new partition's shards
--    over one connection per worker: in parallel, over several, they wait on
--    one another and Citus cancels the transaction as a distributed deadlock
--    (40P01). Without the citus extension in the database it does what it did
--    (0007): the function is otherwise unchanged, with every name qualified
--    and the search_path pg_catalog, pg_temp.
DO $migration$
DECLARE
    s constant text := pg_catalog.current_schema();
    path constant text := pg_catalog.current_setting('search_path');
    rejects regclass;
    body text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    rejects := to_regclass(format('%I.cloudtrail_rejects', s));
    IF rejects IS NULL THEN
        RAISE EXCEPTION 'pgtrail: cloudtrail_rejects is not in schema %, the first of the search_path (%)', s, path
            USING HINT = 'Migrate with the search_path that created pgtrail''s tables.';
    END IF;

    -- 1. The rejects' key. The constraints are found by what they are,
    -- not by name; the new key's index is built once, in the table's
    -- order of the natural key, while the table is locked.
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', rejects,
        (SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = rejects AND contype = 'p'));
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', rejects,
        (SELECT conname FROM pg_catalog.pg_constraint
         WHERE conrelid = rejects AND contype = 'u'
           AND conkey = ARRAY(SELECT attnum FROM pg_catalog.pg_attribute
                              WHERE attrelid = rejects AND attname IN ('s3_bucket', 's3_key', 'record_index')
                              ORDER BY array_position(ARRAY['s3_bucket', 's3_key', 'record_index'], attname::text))::int2[]));
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT cloudtrail_rejects_pkey PRIMARY KEY (s3_bucket, s3_key, record_index)', rejects);
    EXECUTE format('CREATE INDEX cloudtrail_rejects_id ON %s (id)', rejects);

    -- 2. pgtrail_ensure_partition: as in 0007, and the Citus setting.
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
    -- Citus: create the partition's shards one connection per worker
    -- (see 0012_citus_ready.sql). Local to this transaction.
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
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

    PERFORM set_config('search_path', path, true);
END
$migration$;
