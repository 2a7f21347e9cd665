-- Measures what each candidate index costs the writer. For every variant it
-- builds a fresh day-partitioned copy of cloudtrail_events with the primary
-- key plus that variant's indexes, then moves the first :n rows of bench_gen
-- into it the way the sink does (INSERT … SELECT … ON CONFLICT DO NOTHING),
-- :batch rows per transaction, and records rows per second and index sizes
-- in bench_ingest.
--
--   psql -v n=1000000 -v batch=2000 -f docs/bench/ingest-cost.sql
\set ON_ERROR_STOP on

DROP TABLE IF EXISTS bench_src;
CREATE UNLOGGED TABLE bench_src AS
    SELECT row_number() OVER (ORDER BY event_time) AS id, * FROM (SELECT * FROM bench_gen LIMIT :n) s;
CREATE INDEX ON bench_src (id);
ANALYZE bench_src;

CREATE TABLE IF NOT EXISTS bench_ingest (
    variant    text,
    rows       bigint,
    seconds    numeric,
    rows_per_s bigint,
    index_size bigint,
    heap_size  bigint,
    at         timestamptz DEFAULT now()
);

CREATE OR REPLACE PROCEDURE bench_ingest_variant(variant text, ddl text[], batch int)
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
    d date;
    n bigint;
    i bigint := 1;
    t0 timestamptz;
    secs numeric;
    stmt text;
BEGIN
    DROP TABLE IF EXISTS bench_t;
    CREATE TABLE bench_t (LIKE cloudtrail_events INCLUDING DEFAULTS, PRIMARY KEY (event_id, event_time))
        PARTITION BY RANGE (event_time);
    SELECT min(event_time), max(event_time), count(*) INTO lo, hi, n FROM bench_src;
    FOR d IN SELECT generate_series((lo AT TIME ZONE 'UTC')::date, (hi AT TIME ZONE 'UTC')::date, interval '1 day')::date LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF bench_t FOR VALUES FROM (%L) TO (%L)',
            'bench_t_' || to_char(d, 'YYYYMMDD'), d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
    END LOOP;
    FOREACH stmt IN ARRAY ddl LOOP
        EXECUTE stmt;
    END LOOP;
    COMMIT;
    CHECKPOINT;
    t0 := clock_timestamp();
    WHILE i <= n LOOP
        INSERT INTO bench_t
            SELECT event_id, event_time, event_version, event_source, event_name, event_type, event_category,
                   aws_region, source_ip_address, user_agent, user_identity_type, user_identity_arn,
                   user_identity_account_id, user_identity_principal_id, user_identity_access_key_id,
                   user_identity_user_name, session_issuer_arn, session_mfa_authenticated, invoked_by,
                   error_code, error_message, request_id, read_only, management_event, recipient_account_id,
                   shared_event_id, vpc_endpoint_id, request_parameters, response_elements,
                   additional_event_data, resources, record, s3_bucket, s3_key, ingested_at
            FROM bench_src WHERE id >= i AND id < i + batch
            ON CONFLICT DO NOTHING;
        COMMIT;
        i := i + batch;
    END LOOP;
    secs := extract(epoch FROM clock_timestamp() - t0);
    INSERT INTO bench_ingest (variant, rows, seconds, rows_per_s, index_size, heap_size)
    SELECT variant, n, round(secs, 1), round(n / secs),
           (SELECT sum(pg_indexes_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'bench_t'::regclass),
           (SELECT sum(pg_table_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'bench_t'::regclass);
    COMMIT;
    RAISE NOTICE '% : % rows in % s', variant, n, round(secs, 1);
END
$$;

CALL bench_ingest_variant('primary key only', '{}', :batch);
CALL bench_ingest_variant('+ brin (event_time)', ARRAY['CREATE INDEX ON bench_t USING brin (event_time)'], :batch);
CALL bench_ingest_variant('+ btree (event_time)', ARRAY['CREATE INDEX ON bench_t (event_time)'], :batch);
CALL bench_ingest_variant('+ (event_name, event_time)', ARRAY['CREATE INDEX ON bench_t (event_name, event_time)'], :batch);
CALL bench_ingest_variant('+ (user_identity_arn, event_time)', ARRAY['CREATE INDEX ON bench_t (user_identity_arn, event_time)'], :batch);
CALL bench_ingest_variant('+ (user_identity_access_key_id, event_time)', ARRAY['CREATE INDEX ON bench_t (user_identity_access_key_id, event_time)'], :batch);
CALL bench_ingest_variant('+ (source_ip_address, event_time)', ARRAY['CREATE INDEX ON bench_t (source_ip_address, event_time)'], :batch);
CALL bench_ingest_variant('+ (recipient_account_id, event_time)', ARRAY['CREATE INDEX ON bench_t (recipient_account_id, event_time)'], :batch);
CALL bench_ingest_variant('+ (error_code, event_time) WHERE error_code IS NOT NULL', ARRAY['CREATE INDEX ON bench_t (error_code, event_time) WHERE error_code IS NOT NULL'], :batch);
CALL bench_ingest_variant('+ gin (resources jsonb_path_ops)', ARRAY['CREATE INDEX ON bench_t USING gin (resources jsonb_path_ops)'], :batch);
CALL bench_ingest_variant('+ every candidate above', ARRAY[
    'CREATE INDEX ON bench_t USING brin (event_time)',
    'CREATE INDEX ON bench_t (event_time)',
    'CREATE INDEX ON bench_t (event_name, event_time)',
    'CREATE INDEX ON bench_t (user_identity_arn, event_time)',
    'CREATE INDEX ON bench_t (user_identity_access_key_id, event_time)',
    'CREATE INDEX ON bench_t (source_ip_address, event_time)',
    'CREATE INDEX ON bench_t (recipient_account_id, event_time)',
    'CREATE INDEX ON bench_t (error_code, event_time) WHERE error_code IS NOT NULL',
    'CREATE INDEX ON bench_t USING gin (resources jsonb_path_ops)'], :batch);
CALL bench_ingest_variant('primary key only (again, to gauge drift)', '{}', :batch);

SELECT variant, rows, seconds, rows_per_s,
       pg_size_pretty(index_size) AS indexes, pg_size_pretty(heap_size) AS heap
FROM bench_ingest ORDER BY at;
