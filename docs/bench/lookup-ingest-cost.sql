-- What the LookupEvents indexes of migrations/0008_lookup_indexes.sql cost
-- the writer, measured as ingest-cost.sql measures 0003's: the same
-- generated events, moved the way the sink moves them, each variant three
-- times, interleaved. The baseline (ord 0) is 0003's set, so that each
-- figure is what 0008 adds to a database as pgtrail migrates it.
--
-- Run it in a database migrated by pgtrail migrate (it needs 0008's
-- functions) that holds bench_gen (generate.sql):
--
--   psql -v n=200000 -v batch=2000 -v reps=3 -f docs/bench/lookup-ingest-cost.sql
\set ON_ERROR_STOP on

DROP TABLE IF EXISTS bench_variant;
CREATE TABLE bench_variant (ord int PRIMARY KEY, label text NOT NULL, ddl text[] NOT NULL);
INSERT INTO bench_variant VALUES
 (0, 'the 0003 set (baseline)', ARRAY[
    'CREATE INDEX ON bench_t USING brin (event_time) WITH (autosummarize = on)',
    'CREATE INDEX ON bench_t (event_name)',
    'CREATE INDEX ON bench_t (user_identity_arn, event_time)',
    'CREATE INDEX ON bench_t (user_identity_access_key_id, event_time)',
    'CREATE INDEX ON bench_t (source_ip_address, event_time)',
    'CREATE INDEX ON bench_t (error_code, event_time) WHERE error_code IS NOT NULL',
    'CREATE INDEX ON bench_t (event_time) WHERE user_identity_type = ''Root''']),
 (1, '+ Username (derived, event_time)', ARRAY[
    'CREATE INDEX ON bench_t (pgtrail_lookup_username(user_identity_type, user_identity_user_name, user_identity_arn, user_identity_principal_id), event_time)']),
 (2, '+ (event_source, event_time)', ARRAY['CREATE INDEX ON bench_t (event_source, event_time)']),
 (3, '+ gin (Resources derived) partial', ARRAY[
    'CREATE INDEX ON bench_t USING gin (pgtrail_lookup_resource_keys(read_only, event_source, request_parameters, response_elements, resources)) WHERE pgtrail_lookup_resources_indexed(management_event, read_only, event_source, resources)']),
 (4, '+ (event_time) WHERE insight', ARRAY['CREATE INDEX ON bench_t (event_time) WHERE event_type = ''AwsCloudTrailInsight''']),
 (5, 'the 0003 set + 0008', ARRAY[]::text[]);
-- Variants 1–4 are the baseline plus one index; 5 is the baseline plus all.
UPDATE bench_variant SET ddl = (SELECT ddl FROM bench_variant WHERE ord = 0) || ddl WHERE ord BETWEEN 1 AND 4;
UPDATE bench_variant SET ddl = (SELECT array_agg(d ORDER BY o, n) FROM bench_variant v, unnest(v.ddl) WITH ORDINALITY u(d, n),
                                LATERAL (SELECT v.ord AS o) x
                                WHERE v.ord = 0 OR (v.ord BETWEEN 1 AND 4 AND n > (SELECT cardinality(ddl) FROM bench_variant WHERE ord = 0)))
WHERE ord = 5;

\set keep_variants 1
\ir ingest-cost.sql
