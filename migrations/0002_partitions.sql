-- Partition management: on-demand creation that never blocks behind readers,
-- and retention by dropping whole partitions.

-- pgtrail_ensure_partition creates the partition of cloudtrail_events that
-- holds the UTC day "day", unless it exists, and returns whether it created
-- it. It replaces the version of 0001 (same signature, so grants are kept):
--
--  * The partition is created as a plain table and then attached. CREATE
--    TABLE … PARTITION OF needs an ACCESS EXCLUSIVE lock on cloudtrail_events,
--    so it waits behind every running query, analysts' included, and every
--    writer then queues behind it; ATTACH PARTITION needs only SHARE UPDATE
--    EXCLUSIVE, which neither reads nor inserts conflict with.
--  * A new partition gets the parent's privileges, so that the reader may
--    query a partition directly too.
--  * Days before year 1 (which CloudTrail never writes, but a hand-made
--    record can carry) get distinct names.
--  * A table of the partition's name that is not a partition of
--    cloudtrail_events is an error, not a silent success.
--
-- It runs with its owner's rights, so that the writer role needs no power
-- over the table itself, and takes an advisory lock so that concurrent
-- writers create each partition once.
CREATE OR REPLACE FUNCTION pgtrail_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql STRICT SECURITY DEFINER
SET search_path FROM CURRENT SET timezone = 'UTC' SET datestyle = 'ISO, YMD' AS $$
DECLARE
    part text := 'cloudtrail_events_' || to_char(day, 'YYYYMMDD')
                 || CASE WHEN day < date '0001-01-01' THEN '_bc' ELSE '' END;
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    rel regclass;
    g record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pgtrail.partition'));
    rel := to_regclass(quote_ident(part));
    IF rel IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = rel AND inhparent = 'cloudtrail_events'::regclass) THEN
            RAISE EXCEPTION 'pgtrail: table % exists but is not a partition of cloudtrail_events', part
                USING HINT = 'Attach it (ALTER TABLE cloudtrail_events ATTACH PARTITION …) or rename it.';
        END IF;
        RETURN false;
    END IF;
    -- The CHECK constraint lets ATTACH skip its validation scan; it is
    -- redundant once attached and dropped again.
    EXECUTE format('CREATE TABLE %I (LIKE cloudtrail_events INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION,
                        CONSTRAINT pgtrail_bound CHECK (event_time >= %L AND event_time < %L))',
        part, lo, hi);
    EXECUTE format('ALTER TABLE cloudtrail_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT pgtrail_bound', part);
    FOR g IN
        SELECT a.privilege_type, a.grantee
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'cloudtrail_events'::regclass AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON %I TO %s', g.privilege_type, part,
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
    RETURN true;
EXCEPTION
    -- A partition of another shape (a month, say) made by hand already
    -- covers this day: rows go there.
    WHEN invalid_object_definition THEN
        IF SQLERRM LIKE '%would overlap partition%' THEN
            RETURN false;
        END IF;
        RAISE;
END
$$;

-- pgtrail_drop_partitions_before drops every partition of cloudtrail_events
-- whose whole range lies before cutoff (midnight UTC), oldest first, and
-- returns what it dropped; with dry_run it drops nothing and returns what it
-- would drop. approx_rows is the planner's estimate (-1 if never analyzed).
-- Whole partitions go, never a DELETE: no dead rows, no vacuum debt.
--
-- Dropping a partition takes an ACCESS EXCLUSIVE lock on cloudtrail_events
-- for the rest of the transaction: callers should set lock_timeout.
-- It runs with its owner's rights so that the writer role can apply
-- retention; it refuses a cutoff after today (UTC), so that no caller can
-- drop today's or future partitions.
CREATE FUNCTION pgtrail_drop_partitions_before(cutoff date, dry_run boolean DEFAULT false)
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, approx_rows bigint)
LANGUAGE plpgsql STRICT SECURITY DEFINER
SET search_path FROM CURRENT SET timezone = 'UTC' SET datestyle = 'ISO, YMD' AS $$
DECLARE
    limit_ts timestamptz := cutoff::timestamp AT TIME ZONE 'UTC';
    p record;
BEGIN
    IF cutoff > (now() AT TIME ZONE 'UTC')::date THEN
        RAISE EXCEPTION 'pgtrail: retention cutoff % is after today (UTC); refusing to drop current partitions', cutoff;
    END IF;
    FOR p IN
        SELECT c.oid::regclass AS rel, c.relname::text AS name, c.reltuples, b.m[1]::timestamptz AS lo, b.m[2]::timestamptz AS hi
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                                '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') AS m) b
        WHERE i.inhparent = 'cloudtrail_events'::regclass
          AND b.m IS NOT NULL -- not DEFAULT, not MINVALUE/MAXVALUE
          AND b.m[2]::timestamptz <= limit_ts
        ORDER BY b.m[2]::timestamptz
    LOOP
        IF NOT dry_run THEN
            EXECUTE format('DROP TABLE %s', p.rel);
        END IF;
        partition_name := p.name;
        range_start := p.lo;
        range_end := p.hi;
        approx_rows := greatest(p.reltuples, -1)::bigint;
        RETURN NEXT;
    END LOOP;
END
$$;
