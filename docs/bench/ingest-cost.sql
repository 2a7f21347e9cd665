-- Measures what each candidate index costs the writer. For every variant it
-- builds a fresh day-partitioned copy of cloudtrail_events with the primary
-- key plus that variant's indexes, then moves the first :n rows of bench_gen
-- into it the way the sink does (INSERT … SELECT … ON CONFLICT DO NOTHING),
-- :batch rows per transaction. Each variant runs :reps times, interleaved
-- with the others, so that load from elsewhere on the machine spreads over
-- all of them. Per run it records the wall time, the CPU time of the
-- session's server process (from /proc: superuser, Linux), and, from EXPLAIN (ANALYZE,
-- WAL), the WAL this session alone wrote: its records (one per heap, TOAST
-- and index insertion: they do not depend on what else the server does),
-- and its bytes (which also count full-page images, so they vary with
-- checkpoint timing).
--
--   psql -v n=300000 -v batch=2000 -v reps=3 -f docs/bench/ingest-cost.sql
\set ON_ERROR_STOP on

DROP TABLE IF EXISTS bench_src;
CREATE UNLOGGED TABLE bench_src AS
    SELECT row_number() OVER (ORDER BY event_time) AS id, * FROM (SELECT * FROM bench_gen LIMIT :n) s;
CREATE INDEX ON bench_src (id);
ANALYZE bench_src;

-- Another script may bring its own variants (lookup-ingest-cost.sql): it
-- fills bench_variant and sets keep_variants before including this one.
\if :{?keep_variants}
\else
DROP TABLE IF EXISTS bench_variant;
CREATE TABLE bench_variant (ord int PRIMARY KEY, label text NOT NULL, ddl text[] NOT NULL);
INSERT INTO bench_variant VALUES
 (0, 'primary key only', '{}'),
 (1, '+ brin (event_time)', ARRAY['CREATE INDEX ON bench_t USING brin (event_time)']),
 (2, '+ btree (event_time)', ARRAY['CREATE INDEX ON bench_t (event_time)']),
 (3, '+ (event_name, event_time)', ARRAY['CREATE INDEX ON bench_t (event_name, event_time)']),
 (12, '+ (event_name)', ARRAY['CREATE INDEX ON bench_t (event_name)']),
 (4, '+ (user_identity_arn, event_time)', ARRAY['CREATE INDEX ON bench_t (user_identity_arn, event_time)']),
 (5, '+ (user_identity_access_key_id, event_time)', ARRAY['CREATE INDEX ON bench_t (user_identity_access_key_id, event_time)']),
 (6, '+ (source_ip_address, event_time)', ARRAY['CREATE INDEX ON bench_t (source_ip_address, event_time)']),
 (7, '+ (recipient_account_id, event_time)', ARRAY['CREATE INDEX ON bench_t (recipient_account_id, event_time)']),
 (8, '+ (error_code, event_time) WHERE error_code IS NOT NULL', ARRAY['CREATE INDEX ON bench_t (error_code, event_time) WHERE error_code IS NOT NULL']),
 (9, '+ gin (resources jsonb_path_ops)', ARRAY['CREATE INDEX ON bench_t USING gin (resources jsonb_path_ops)']),
 (10, 'the set in migrations/0003_indexes.sql', ARRAY[
    'CREATE INDEX ON bench_t USING brin (event_time) WITH (autosummarize = on)',
    'CREATE INDEX ON bench_t (event_name)',
    'CREATE INDEX ON bench_t (user_identity_arn, event_time)',
    'CREATE INDEX ON bench_t (user_identity_access_key_id, event_time)',
    'CREATE INDEX ON bench_t (source_ip_address, event_time)',
    'CREATE INDEX ON bench_t (error_code, event_time) WHERE error_code IS NOT NULL',
    'CREATE INDEX ON bench_t (event_time) WHERE user_identity_type = ''Root''']),
 (11, 'every candidate above', ARRAY[
    'CREATE INDEX ON bench_t USING brin (event_time)',
    'CREATE INDEX ON bench_t (event_time)',
    'CREATE INDEX ON bench_t (event_name, event_time)',
    'CREATE INDEX ON bench_t (user_identity_arn, event_time)',
    'CREATE INDEX ON bench_t (user_identity_access_key_id, event_time)',
    'CREATE INDEX ON bench_t (source_ip_address, event_time)',
    'CREATE INDEX ON bench_t (recipient_account_id, event_time)',
    'CREATE INDEX ON bench_t (error_code, event_time) WHERE error_code IS NOT NULL',
    'CREATE INDEX ON bench_t USING gin (resources jsonb_path_ops)']);
\endif

DROP TABLE IF EXISTS bench_run;
CREATE TABLE bench_run (
    ord        int,
    rep        int,
    rows       bigint,
    seconds    numeric,
    cpu        numeric,
    wal_bytes  numeric,
    wal_records numeric,
    wal_fpi    numeric,
    index_size bigint,
    heap_size  bigint
);

-- bench_cpu is the CPU time, user and system, that this server process has
-- used, in seconds (Linux clock ticks are 1/100 s).
CREATE OR REPLACE FUNCTION bench_cpu() RETURNS numeric LANGUAGE sql AS $$
    SELECT (f[14]::numeric + f[15]::numeric) / 100
    FROM regexp_split_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ') AS g,
         LATERAL (SELECT ARRAY['', ''] || g AS f) x
$$;

CREATE OR REPLACE PROCEDURE bench_ingest_variant(v_ord int, v_rep int, batch int)
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
    d date;
    n bigint;
    i bigint := 1;
    t0 timestamptz;
    secs numeric;
    cpu0 numeric;
    stmt text;
    plan json;
    wal numeric := 0;
    recs numeric := 0;
    fpi numeric := 0;
BEGIN
    DROP TABLE IF EXISTS bench_t;
    CREATE TABLE bench_t (LIKE cloudtrail_events INCLUDING DEFAULTS, PRIMARY KEY (event_id, event_time))
        PARTITION BY RANGE (event_time);
    SELECT min(event_time), max(event_time), count(*) INTO lo, hi, n FROM bench_src;
    FOR d IN SELECT generate_series((lo AT TIME ZONE 'UTC')::date, (hi AT TIME ZONE 'UTC')::date, interval '1 day')::date LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF bench_t FOR VALUES FROM (%L) TO (%L)',
            'bench_t_' || to_char(d, 'YYYYMMDD'), d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
    END LOOP;
    FOREACH stmt IN ARRAY (SELECT ddl FROM bench_variant WHERE ord = v_ord) LOOP
        EXECUTE stmt;
    END LOOP;
    COMMIT;
    CHECKPOINT;
    t0 := clock_timestamp();
    cpu0 := bench_cpu();
    WHILE i <= n LOOP
        EXECUTE format($q$EXPLAIN (ANALYZE, TIMING OFF, WAL, FORMAT JSON)
            INSERT INTO bench_t
            SELECT event_id, event_time, event_version, event_source, event_name, event_type, event_category,
                   aws_region, source_ip_address, user_agent, user_identity_type, user_identity_arn,
                   user_identity_account_id, user_identity_principal_id, user_identity_access_key_id,
                   user_identity_user_name, session_issuer_arn, session_mfa_authenticated, invoked_by,
                   error_code, error_message, request_id, read_only, management_event, recipient_account_id,
                   shared_event_id, vpc_endpoint_id, request_parameters, response_elements,
                   additional_event_data, resources, record, s3_bucket, s3_key, ingested_at
            FROM bench_src WHERE id >= %s AND id < %s
            ON CONFLICT DO NOTHING$q$, i, i + batch) INTO plan;
        wal := wal + (plan->0->'Plan'->>'WAL Bytes')::numeric;
        recs := recs + (plan->0->'Plan'->>'WAL Records')::numeric;
        fpi := fpi + (plan->0->'Plan'->>'WAL FPI')::numeric;
        COMMIT;
        i := i + batch;
    END LOOP;
    secs := extract(epoch FROM clock_timestamp() - t0);
    INSERT INTO bench_run
    SELECT v_ord, v_rep, n, secs, bench_cpu() - cpu0, wal, recs, fpi,
           (SELECT sum(pg_indexes_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'bench_t'::regclass),
           (SELECT sum(pg_table_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'bench_t'::regclass);
    COMMIT;
    RAISE NOTICE 'variant % rep %: % rows in % s (% s CPU), % MB WAL', v_ord, v_rep, n, round(secs, 1),
        (SELECT cpu FROM bench_run WHERE ord = v_ord AND rep = v_rep), round(wal / 1e6);
END
$$;

SELECT format('CALL bench_ingest_variant(%s, %s, %s)', v.ord, r, :batch)
FROM generate_series(1, :reps) r, bench_variant v
ORDER BY r, v.ord
\gexec

DROP TABLE IF EXISTS bench_t;

-- Per variant: the fastest run (the one least disturbed) and the median,
-- the WAL, and the index size, each also relative to the primary key alone.
WITH s AS (
    SELECT ord, min(seconds) AS best, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu) AS cpu,
           max(rows) AS rows, min(wal_bytes) / max(rows) AS wal_per_row, avg(wal_records) / max(rows) AS recs_per_row,
           avg(index_size) AS index_size, avg(heap_size) AS heap_size
    FROM bench_run GROUP BY ord
), base AS (SELECT * FROM s WHERE ord = 0)
SELECT v.label,
       round(s.rows / s.cpu) AS rows_per_cpu_s,
       round(100 * (s.cpu / base.cpu - 1)) AS "cpu_%",
       round(s.rows / s.best) AS best_rows_per_s,
       round(s.rows / s.median) AS median_rows_per_s,
       round(s.recs_per_row, 2) AS wal_records_per_row,
       round(s.wal_per_row) AS min_wal_bytes_per_row,
       round(100 * (s.wal_per_row / base.wal_per_row - 1)) AS "wal_%",
       pg_size_pretty(round(s.index_size)::bigint) AS indexes,
       pg_size_pretty(round(s.index_size - base.index_size)::bigint) AS added_index
FROM s JOIN bench_variant v USING (ord), base
ORDER BY s.ord;
