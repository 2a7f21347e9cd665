-- Activity per hour: how many events, and how many failed calls, each
-- hour of event_time holds. The event-history page's chart over a wide
-- range without filters reads these rows instead of counting every event
-- (sink/history_activity.go): over 90 days of five million events, a few
-- thousand rows instead of all the partitions' rows.
--
-- Every write adds, in its own transaction, one row per hour of the events
-- it inserted (a duplicate inserts nothing and adds nothing), so the rows
-- of an hour sum to what cloudtrail_events holds for it at every commit.
-- Rows are only added, never updated: concurrent writers never wait on one
-- another for a counter. pgtrail_compact_activity merges each hour's rows
-- into one, from time to time (pgtrail run).
CREATE TABLE cloudtrail_activity (
    hour   timestamptz NOT NULL
        CHECK (hour = date_bin('1 hour', hour, timestamptz '1970-01-01 00:00:00+00')),
    events bigint      NOT NULL CHECK (events >= 0),
    errors bigint      NOT NULL CHECK (errors >= 0 AND errors <= events)
);
CREATE INDEX cloudtrail_activity_hour ON cloudtrail_activity (hour);
COMMENT ON TABLE cloudtrail_activity IS 'Events and failed calls (error_code set) per hour of event_time; the rows of one hour add up. Read it with sum() … GROUP BY hour.';

-- The hours of the events stored so far. SHARE mode lets readers in and
-- holds writers back until this commits: no event is counted twice, and
-- none is left out, whatever the workers of the previous version commit
-- meanwhile. On a large table this scan takes a while (a full read of the
-- events, once: 6 s for a million events over a year here), and it locks
-- every partition as 0008's indexes did (docs/scaling.md sizes the lock
-- table for that).
LOCK TABLE cloudtrail_events IN SHARE MODE;
INSERT INTO cloudtrail_activity (hour, events, errors)
SELECT date_bin('1 hour', event_time, timestamptz '1970-01-01 00:00:00+00'), count(*), count(error_code)
FROM cloudtrail_events
GROUP BY 1;

-- pgtrail_compact_activity merges each hour's rows into one, and, given a
-- cutoff, deletes the hours before it, whose partitions retention dropped:
-- a day backfilled again after retention must not count twice. The writer
-- may insert rows, not change or delete them, so this is a SECURITY
-- DEFINER function built as 0013_alerts_retention.sql builds
-- pgtrail_delete_alerts_before, with the same retention floor: a stolen
-- writer credential can merge rows (their sums stay) and delete no hour
-- that retention would keep.
DO $migration$
DECLARE
    s constant text := pg_catalog.current_schema();
    path constant text := pg_catalog.current_setting('search_path');
    reader constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.reader_role', true), ''), 'pgtrail_reader');
    writer constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.writer_role', true), ''), 'pgtrail_writer');
    body text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF s IS NULL OR to_regclass(format('%I.cloudtrail_activity', s)) IS NULL THEN
        RAISE EXCEPTION 'pgtrail: cloudtrail_activity is not in schema %, the first of the search_path (%)', s, path
            USING HINT = 'Migrate with the search_path that created pgtrail''s tables.';
    END IF;

    body := $body$
DECLARE
    sch constant text := @schema@;
    today constant date := (now() AT TIME ZONE 'UTC')::date;
    floor_days integer;
BEGIN
    -- One at a time: two merges deleting the same rows in another order
    -- would deadlock.
    PERFORM pg_advisory_xact_lock(hashtext('pgtrail.activity'));
    deleted := 0;
    IF cutoff IS NOT NULL THEN
        IF cutoff > today THEN
            RAISE EXCEPTION 'pgtrail: retention cutoff % is after today (UTC); refusing to delete current activity', cutoff;
        END IF;
        EXECUTE format('SELECT days FROM %I.pgtrail_retention_floor', sch) INTO floor_days;
        IF floor_days IS NOT NULL AND cutoff > today - floor_days THEN
            RAISE EXCEPTION 'pgtrail: retention cutoff % is after %, the retention floor of % days (UTC); refusing to delete younger activity',
                    cutoff, today - floor_days, floor_days
                USING HINT = 'The owner sets the floor: pgtrail migrate with PGTRAIL_RETENTION_DAYS (docs/analysts.md).';
        END IF;
        EXECUTE format('DELETE FROM %I.cloudtrail_activity WHERE hour < $1', sch)
            USING cutoff::timestamp AT TIME ZONE 'UTC';
        GET DIAGNOSTICS deleted = ROW_COUNT;
    END IF;
    -- Rows that writers add meanwhile are not seen, and are merged next
    -- time.
    EXECUTE format($q$WITH d AS (
            DELETE FROM %1$I.cloudtrail_activity
            WHERE hour IN (SELECT hour FROM %1$I.cloudtrail_activity GROUP BY hour HAVING count(*) > 1)
            RETURNING hour, events, errors
        ), m AS (
            INSERT INTO %1$I.cloudtrail_activity (hour, events, errors)
            SELECT hour, sum(events), sum(errors) FROM d GROUP BY hour
            RETURNING 1
        ) SELECT (SELECT count(*) FROM d) - (SELECT count(*) FROM m)$q$, sch) INTO merged;
    RETURN NEXT;
END
$body$;
    EXECUTE format($ddl$CREATE OR REPLACE FUNCTION %I.pgtrail_compact_activity(cutoff date DEFAULT NULL)
        RETURNS TABLE (merged bigint, deleted bigint)
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp SET timezone = 'UTC' SET datestyle = 'ISO, YMD'
        AS %L$ddl$, s, replace(body, '@schema@', quote_literal(s)));
    EXECUTE format('REVOKE ALL ON FUNCTION %I.pgtrail_compact_activity(date) FROM PUBLIC', s);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.pgtrail_compact_activity(date) TO %I', s, writer);

    EXECUTE format('GRANT SELECT ON %I.cloudtrail_activity TO %I', s, reader);
    EXECUTE format('GRANT INSERT ON %I.cloudtrail_activity TO %I', s, writer);

    PERFORM set_config('search_path', path, true);
END
$migration$;
