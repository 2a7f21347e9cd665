-- pgtrail's layout on Citus: which tables are distributed, by what, and
-- which are reference tables (copied whole to every node). pgtrail migrate
-- runs this file, on the coordinator, as the tables' owner, after the
-- numbered migrations, when PGTRAIL_CITUS=true and the citus extension is
-- installed (docs/scaling.md). It runs in one transaction: every table is
-- distributed, or none. A table that Citus already manages is skipped, so
-- running it again changes nothing.
--
-- The shard count is the session's citus.shard_count (32 unless set; see
-- docs/scaling.md for sizing it). A populated table's rows are copied into
-- its shards; the coordinator keeps its local copy until
-- truncate_local_data_after_distributing_table is run on it.

-- One connection per worker: distributing several tables, some of them
-- populated, over parallel connections in one transaction can deadlock
-- with itself, as creating a partition did (0012_citus_ready.sql).
SET LOCAL citus.multi_shard_modify_mode TO 'sequential';

-- The ledger, by object: a redelivery's upsert goes to one shard.
SELECT create_distributed_table('cloudtrail_objects', 's3_key', colocate_with => 'none')
WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cloudtrail_objects'::regclass);

-- Rejects and failures, by object too, on the same shards as the ledger
-- row of their object (their unique keys include s3_key since 0012 and
-- 0010).
SELECT create_distributed_table('cloudtrail_rejects', 's3_key', colocate_with => 'cloudtrail_objects')
WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cloudtrail_rejects'::regclass);
SELECT create_distributed_table('cloudtrail_failures', 's3_key', colocate_with => 'cloudtrail_objects')
WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cloudtrail_failures'::regclass);

-- Integrity verdicts (0011), by object as well: a log file's verdict
-- sits beside its ledger row, which is what it is checked against, and a
-- digest's beside the ledger rows of digest objects.
SELECT create_distributed_table('cloudtrail_digest_files', 's3_key', colocate_with => 'cloudtrail_objects')
WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cloudtrail_digest_files'::regclass);
SELECT create_distributed_table('cloudtrail_digests', 's3_key', colocate_with => 'cloudtrail_objects')
WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cloudtrail_digests'::regclass);

-- The events, by event_id, which the primary key (event_id, event_time)
-- includes: each day's partition is split into the same shards, and a
-- partition that pgtrail_ensure_partition attaches later is distributed
-- as it is attached. The ledger and the events share the colocation
-- group, so that the shard rebalancer moves them together.
SELECT create_distributed_table('cloudtrail_events', 'event_id', colocate_with => 'cloudtrail_objects')
WHERE NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'cloudtrail_events'::regclass);

-- Small tables, read and written whole: reference tables. Alerts are keyed
-- by a random id, so no column of theirs could distribute them; they are
-- few (one per rule match, not per event). The activity rows (0014) are a
-- few an hour. The lookup summaries (0015) stay empty on Citus
-- (pgtrail_summarize_lookup_day summarizes no distributed partition).
SELECT create_reference_table(t::regclass)
FROM unnest(ARRAY['pgtrail_schema_migrations', 'pgtrail_retention_floor',
                  'cloudtrail_alerts', 'cloudtrail_alert_deliveries', 'cloudtrail_alert_summaries',
                  'cloudtrail_activity', 'pgtrail_lookup_summaries']) AS t
WHERE to_regclass(t) IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(t));
