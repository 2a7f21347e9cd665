-- Lookup summaries: for each closed day partition, a Bloom filter of the
-- values a lookup asks for (EventId, EventName, EventSource, AccessKeyId,
-- Username, and the ResourceType and ResourceName keys), so that a lookup
-- of a rare value over a year of history reads the few days that may hold
-- it instead of all of them (sink/lookup_summary.go). A summary answers
-- "surely not here" or "maybe": a day it rules out is skipped; about one day
-- in a hundred is read for nothing.
--
-- The filter is blocked: bits is whole 64-byte (512-bit) blocks, about ten
-- bits for each distinct value of the day; a value sets 7 bits of the one
-- block its first hash picks, at the positions its second hash gives, nine
-- bits each (the seven lowest nine-bit groups of the second hash). Both
-- hashes are hashtextextended over the value with the day's seed (seed and
-- seed + 1), so that a value that falsely matches one day does not match
-- the others. pgtrail_summarize_lookup_day writes this layout and
-- pgtrail_lookup_summaries_lacking reads it. A lookup reads one block of
-- each day (substring of bits, stored uncompressed so that only that
-- block's TOAST chunk is fetched).
--
-- A summary is bound to its partition by OID: a partition dropped and made
-- again (retention, then a backfill) is not the one summarized. Every
-- event stored after its partition's summary deletes the summary, in the
-- storing transaction (a row trigger that summarizing puts on the
-- partition), whatever wrote it: a summary holds every value its partition
-- holds, or is gone.
CREATE TABLE pgtrail_lookup_summaries (
    relid oid         PRIMARY KEY,
    day   date        NOT NULL,
    seed  bigint      NOT NULL,
    keys  bigint      NOT NULL CHECK (keys >= 0),
    bits  bytea       NOT NULL CHECK (length(bits) > 0 AND length(bits) % 64 = 0),
    built timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE pgtrail_lookup_summaries ALTER COLUMN bits SET STORAGE EXTERNAL;
COMMENT ON TABLE pgtrail_lookup_summaries IS 'Bloom filters of the lookup values each closed day partition holds (pgtrail_summarize_lookup_day); a partition without a row here is read by every lookup.';

-- pgtrail_lookup_summaries_lacking returns the partitions whose summaries
-- surely lack one of wanted: a day that lacks any of a lookup's ANDed
-- values holds none of its events. A key is the attribute's letter, a colon
-- and the value ("i:" EventId, "e:" EventName, "s:" EventSource, "k:"
-- AccessKeyId, "u:" Username), or a key of pgtrail_lookup_resource_keys
-- ("t:", "n:"). One statement over every summary (the function is inlined
-- into the caller's): a year's took 1.4 to 4 ms, where a function called
-- for each summary took 10 to 25.
CREATE FUNCTION pgtrail_lookup_summaries_lacking(wanted text[]) RETURNS TABLE (relid oid)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT DISTINCT s.relid
    FROM pgtrail_lookup_summaries s
    CROSS JOIN LATERAL (
        -- OFFSET 0: the block is fetched once a key, not once a bit.
        SELECT substring(s.bits FROM ((hashtextextended(k, s.seed) & 9223372036854775807) % (length(s.bits) / 64) * 64 + 1)::int FOR 64) AS b,
               hashtextextended(k, s.seed + 1) AS h
        FROM unnest(wanted) k
        OFFSET 0) x
    WHERE get_bit(x.b, (x.h & 511)::int) = 0 OR get_bit(x.b, ((x.h >> 9) & 511)::int) = 0
       OR get_bit(x.b, ((x.h >> 18) & 511)::int) = 0 OR get_bit(x.b, ((x.h >> 27) & 511)::int) = 0
       OR get_bit(x.b, ((x.h >> 36) & 511)::int) = 0 OR get_bit(x.b, ((x.h >> 45) & 511)::int) = 0
       OR get_bit(x.b, ((x.h >> 54) & 511)::int) = 0
$$;

DO $migration$
DECLARE
    s constant text := pg_catalog.current_schema();
    path constant text := pg_catalog.current_setting('search_path');
    reader constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.reader_role', true), ''), 'pgtrail_reader');
    writer constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.writer_role', true), ''), 'pgtrail_writer');
    body text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF s IS NULL OR to_regclass(format('%I.pgtrail_lookup_summaries', s)) IS NULL THEN
        RAISE EXCEPTION 'pgtrail: pgtrail_lookup_summaries is not in schema %, the first of the search_path (%)', s, path
            USING HINT = 'Migrate with the search_path that created pgtrail''s tables.';
    END IF;

    -- The trigger's function: the summary of the partition an event was
    -- stored in, or changed in, goes. The writer may not delete summaries,
    -- so it runs as the owner; a static statement, planned once a session.
    body := $body$
BEGIN
    DELETE FROM @qschema@.pgtrail_lookup_summaries WHERE relid = TG_RELID;
    RETURN NULL;
END
$body$;
    EXECUTE format($ddl$CREATE FUNCTION %I.pgtrail_forget_lookup_summary() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS %L$ddl$, s, replace(body, '@qschema@', quote_ident(s)));
    EXECUTE format('REVOKE ALL ON FUNCTION %I.pgtrail_forget_lookup_summary() FROM PUBLIC', s);

    -- pgtrail_summarize_lookup_day summarizes the newest closed day
    -- partition (its upper bound at or before yesterday, UTC) that has no
    -- summary, and returns its day; NULL when none is left, or while
    -- another session summarizes. pgtrail run calls it until NULL.
    body := $body$
DECLARE
    sch constant text := @schema@;
    events constant regclass := format('%I.cloudtrail_events', sch)::regclass;
    closed constant timestamptz := ((now() AT TIME ZONE 'UTC')::date - 1)::timestamp AT TIME ZONE 'UTC';
    p record;
    seed bigint;
    nkeys bigint;
    bits bytea;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('pgtrail.lookup_summaries')) THEN
        RETURN NULL;
    END IF;
    -- Citus: the partitions are distributed; their shards take no trigger
    -- of this kind, so none is summarized and lookups read every day.
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = events) THEN
            RETURN NULL;
        END IF;
    END IF;
    -- The summaries of dropped partitions.
    EXECUTE format('DELETE FROM %I.pgtrail_lookup_summaries s
        WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhrelid = s.relid AND i.inhparent = $1)', sch)
        USING events;
    EXECUTE format($q$SELECT c.oid::regclass AS rel, b.lo, b.hi
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL (
            SELECT m[1]::timestamptz AS lo, m[2]::timestamptz AS hi
            FROM regexp_match(pg_get_expr(c.relpartbound, c.oid),
                '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') m) b
        WHERE i.inhparent = $1 AND c.relkind = 'r' AND b.hi <= $2
          AND NOT EXISTS (SELECT FROM %I.pgtrail_lookup_summaries s WHERE s.relid = c.oid)
        ORDER BY b.lo DESC
        LIMIT 1$q$, sch) INTO p USING events, closed;
    IF p.rel IS NULL THEN
        RETURN NULL;
    END IF;
    -- Writers storing into the partition are waited for, and held back
    -- until this commits: the summary sees every event stored before it,
    -- and the trigger deletes it for any event stored after.
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', p.rel);
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid = p.rel AND tgname = 'pgtrail_lookup_summary') THEN
        EXECUTE format('CREATE TRIGGER pgtrail_lookup_summary AFTER INSERT OR UPDATE ON %s
            FOR EACH ROW EXECUTE FUNCTION %I.pgtrail_forget_lookup_summary()', p.rel, sch);
    END IF;
    seed := floor(extract(epoch FROM p.lo) / 86400)::bigint;
    EXECUTE format($q$WITH keys AS (
            SELECT DISTINCT k
            FROM %1$s e,
            LATERAL unnest(ARRAY['i:' || e.event_id, 'e:' || e.event_name, 's:' || e.event_source,
                                 'k:' || e.user_identity_access_key_id,
                                 'u:' || %2$I.pgtrail_lookup_username(e.user_identity_type, e.user_identity_user_name,
                                                                     e.user_identity_arn, e.user_identity_principal_id)]
                || CASE WHEN %2$I.pgtrail_lookup_resources_indexed(e.management_event, e.read_only, e.event_source, e.resources)
                        THEN %2$I.pgtrail_lookup_resource_keys(e.read_only, e.event_source, e.request_parameters,
                                                               e.response_elements, e.resources) END) k
            WHERE k IS NOT NULL AND k NOT LIKE 'p:%%'
        ), n AS (
            SELECT count(*) AS keys, greatest(1, (count(*) * 10 + 511) / 512) AS blocks FROM keys
        ), pos AS (
            SELECT x.blk * 512 + ((x.h >> (9 * j)) & 511) AS bit
            FROM keys, n,
                LATERAL (SELECT (hashtextextended(keys.k, $1) & 9223372036854775807) %% n.blocks AS blk,
                                hashtextextended(keys.k, $1 + 1) AS h) x,
                generate_series(0, 6) j
        ), b AS (
            SELECT bit / 8 AS i, bit_or(1 << (bit %% 8)::int) AS v FROM pos GROUP BY 1
        )
        SELECT n.keys,
               (SELECT decode(string_agg(lpad(to_hex(coalesce(b.v, 0)), 2, '0'), '' ORDER BY g.i), 'hex')
                FROM generate_series(0, n.blocks * 64 - 1) g(i) LEFT JOIN b ON b.i = g.i)
        FROM n$q$, p.rel, sch) INTO nkeys, bits USING seed;
    EXECUTE format('INSERT INTO %I.pgtrail_lookup_summaries (relid, day, seed, keys, bits) VALUES ($1, $2, $3, $4, $5)', sch)
        USING p.rel::oid, (p.lo AT TIME ZONE 'UTC')::date, seed, nkeys, bits;
    RETURN (p.lo AT TIME ZONE 'UTC')::date;
END
$body$;
    EXECUTE format($ddl$CREATE FUNCTION %I.pgtrail_summarize_lookup_day() RETURNS date
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp SET timezone = 'UTC' SET datestyle = 'ISO, YMD'
        AS %L$ddl$, s, replace(body, '@schema@', quote_literal(s)));
    EXECUTE format('REVOKE ALL ON FUNCTION %I.pgtrail_summarize_lookup_day() FROM PUBLIC', s);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.pgtrail_summarize_lookup_day() TO %I', s, writer);

    EXECUTE format('GRANT SELECT ON %I.pgtrail_lookup_summaries TO %I', s, reader);

    PERFORM set_config('search_path', path, true);
END
$migration$;
