-- Loads bench_gen (docs/bench/generate.sql) into a migrated database's
-- cloudtrail_events and shows the plans and timings of the cookbook's kinds
-- of question. Run it against a database that `pgtrail migrate` set up:
--
--   psql -v load=1 -f docs/bench/explain.sql     (load=0 to only explain)
\set ON_ERROR_STOP on
\pset pager off

SELECT :load = 1 AS do_load \gset
\if :do_load
SELECT count(*) AS partitions_created
FROM generate_series((SELECT min(event_time) FROM bench_gen) AT TIME ZONE 'UTC',
                     (SELECT max(event_time) FROM bench_gen) AT TIME ZONE 'UTC', interval '1 day') d,
     pgtrail_ensure_partition(d::date) created
WHERE created;
\timing on
INSERT INTO cloudtrail_events SELECT * FROM bench_gen ON CONFLICT DO NOTHING;
VACUUM (ANALYZE) cloudtrail_events;
\timing off
\endif

SELECT count(*) AS events, count(DISTINCT tableoid) AS partitions,
       min(event_time) AS oldest, max(event_time) AS newest
FROM cloudtrail_events;
SELECT pg_size_pretty(sum(pg_table_size(inhrelid))) AS tables, pg_size_pretty(sum(pg_indexes_size(inhrelid))) AS indexes
FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass;
SELECT i.indexrelid::regclass AS index, pg_size_pretty(sum(pg_relation_size(c.inhrelid))) AS size
FROM pg_index i JOIN pg_inherits c ON c.inhparent = i.indexrelid
WHERE i.indrelid = 'cloudtrail_events'::regclass
GROUP BY i.indexrelid ORDER BY 1;

-- The examples: a principal, an access key and an address of middling
-- activity, as an analyst would look them up.
SELECT user_identity_arn AS arn FROM cloudtrail_events
WHERE event_time >= now() - interval '1 day'
GROUP BY 1 ORDER BY count(*) DESC, 1 OFFSET 200 LIMIT 1 \gset
SELECT user_identity_access_key_id AS key FROM cloudtrail_events
WHERE event_time >= now() - interval '1 day'
GROUP BY 1 ORDER BY count(*) DESC, 1 OFFSET 200 LIMIT 1 \gset
SELECT source_ip_address AS ip FROM cloudtrail_events
WHERE event_time >= now() - interval '1 day'
GROUP BY 1 ORDER BY count(*) DESC, 1 OFFSET 200 LIMIT 1 \gset
\echo principal :arn, key :key, address :ip

-- Each query runs twice; the second, warm, run is the one to read.
\set explain 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON)'

\echo '== Q1 the last hour, by service (time range only)'
SELECT event_source, count(*) FROM cloudtrail_events WHERE event_time >= now() - interval '1 hour' GROUP BY 1 ORDER BY 2 DESC LIMIT 10 \g /dev/null
:explain SELECT event_source, count(*) FROM cloudtrail_events WHERE event_time >= now() - interval '1 hour' GROUP BY 1 ORDER BY 2 DESC LIMIT 10;

\echo '== Q2 CIS findings of the last 24 hours (ct_cis_findings)'
SELECT cis_control, finding, count(*) FROM ct_cis_findings WHERE event_time >= now() - interval '24 hours' GROUP BY 1, 2 \g /dev/null
:explain SELECT cis_control, finding, count(*) FROM ct_cis_findings WHERE event_time >= now() - interval '24 hours' GROUP BY 1, 2;

\echo '== Q3 CloudTrail tampering in the last 7 days (ct_cloudtrail_changes)'
SELECT * FROM ct_cloudtrail_changes WHERE event_time >= now() - interval '7 days' ORDER BY event_time \g /dev/null
:explain SELECT event_time, user_identity_arn, event_name FROM ct_cloudtrail_changes WHERE event_time >= now() - interval '7 days' ORDER BY event_time;

\echo '== Q4 a principal''s last 100 calls within 7 days'
SELECT * FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= now() - interval '7 days' ORDER BY event_time DESC LIMIT 100 \g /dev/null
:explain SELECT event_time, event_name, source_ip_address FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= now() - interval '7 days' ORDER BY event_time DESC LIMIT 100;

\echo '== Q5 a principal, day by day, over 30 days'
SELECT 1 FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= now() - interval '30 days' \g /dev/null
:explain SELECT date_trunc('day', event_time), event_name, count(*) FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= now() - interval '30 days' GROUP BY 1, 2;

\echo '== Q6 everything one access key did in 30 days'
SELECT 1 FROM cloudtrail_events WHERE user_identity_access_key_id = :'key' AND event_time >= now() - interval '30 days' \g /dev/null
:explain SELECT event_name, count(*), min(event_time), max(event_time) FROM cloudtrail_events WHERE user_identity_access_key_id = :'key' AND event_time >= now() - interval '30 days' GROUP BY 1;

\echo '== Q7 everything from one address in 7 days'
SELECT 1 FROM cloudtrail_events WHERE source_ip_address = :'ip' AND event_time >= now() - interval '7 days' \g /dev/null
:explain SELECT user_identity_arn, count(*) FROM cloudtrail_events WHERE source_ip_address = :'ip' AND event_time >= now() - interval '7 days' GROUP BY 1;

\echo '== Q8 errors by principal in the last 24 hours (partial index)'
SELECT 1 FROM cloudtrail_events WHERE error_code IS NOT NULL AND event_time >= now() - interval '24 hours' \g /dev/null
:explain SELECT user_identity_arn, error_code, count(*) FROM cloudtrail_events WHERE error_code IS NOT NULL AND event_time >= now() - interval '24 hours' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20;

\echo '== Q9 AccessDenied and friends in the last 24 hours (ct_unauthorized_calls)'
SELECT 1 FROM ct_unauthorized_calls WHERE event_time >= now() - interval '24 hours' \g /dev/null
:explain SELECT user_identity_arn, event_name, count(*) FROM ct_unauthorized_calls WHERE event_time >= now() - interval '24 hours' GROUP BY 1, 2;

\echo '== Q10 the busiest APIs per account over the last day (time range only, aggregates)'
:explain SELECT recipient_account_id, event_name, count(*) FROM cloudtrail_events WHERE event_time >= now() - interval '1 day' GROUP BY 1, 2;

\echo '== Q11 for contrast: the principal with no bound on event_time (every partition)'
:explain SELECT count(*) FROM cloudtrail_events WHERE user_identity_arn = :'arn';

-- Day partitions make many partitions: two years are 730. Literal bounds
-- prune while planning; now()-relative bounds (now() is only stable) prune
-- when the executor starts, after the planner has looked at every
-- partition. This measures what that costs, with 700 empty days added.
\echo '== Q4 with the partitions of the data only'
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass;
:explain SELECT event_time, event_name FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= now() - interval '7 days' ORDER BY event_time DESC LIMIT 100;
SELECT count(*) AS partitions_added
FROM generate_series(now() - interval '730 days', now() - interval '31 days', interval '1 day') d,
     pgtrail_ensure_partition((d AT TIME ZONE 'UTC')::date) created
WHERE created;
ANALYZE cloudtrail_events;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass;
SELECT (now() - interval '7 days')::timestamptz(0)::text AS since \gset
\echo '== Q4 with 730 partitions, now()-relative bound'
:explain SELECT event_time, event_name FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= now() - interval '7 days' ORDER BY event_time DESC LIMIT 100;
:explain SELECT event_time, event_name FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= now() - interval '7 days' ORDER BY event_time DESC LIMIT 100;
\echo '== Q4 with 730 partitions, literal bound'
:explain SELECT event_time, event_name FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= :'since' ORDER BY event_time DESC LIMIT 100;
:explain SELECT event_time, event_name FROM cloudtrail_events WHERE user_identity_arn = :'arn' AND event_time >= :'since' ORDER BY event_time DESC LIMIT 100;
\echo '== the empty days go again'
-- Only the empty ones: pgtrail_drop_partitions_before would drop every day
-- before its cutoff, the loaded ones too.
DO $$
DECLARE
    p regclass;
    empty boolean;
    n int := 0;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits
             WHERE inhparent = 'cloudtrail_events'::regclass LOOP
        EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %s)', p) INTO empty;
        IF empty THEN
            EXECUTE format('DROP TABLE %s', p);
            n := n + 1;
        END IF;
    END LOOP;
    RAISE NOTICE 'dropped % empty partitions', n;
END $$;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass;
