-- Indexes for the questions analysts ask, chosen by measurement on five
-- million generated events and weighed against what each costs the writer
-- (docs/storage.md, docs/bench/). Each is created on the partitioned table,
-- so that every partition, present and future, gets its own.
--
-- Partition pruning already narrows any query to its days; within them:
--
--  * a BRIN index on event_time narrows a range of hours or minutes to the
--    pages that hold it. Events arrive roughly in time order, which is what
--    BRIN needs; it costs the writer next to nothing. autosummarize keeps
--    the newest pages summarized without waiting for a VACUUM.
--  * event_name, which every ct_* view filters on, has a few hundred values:
--    a B-tree on it alone is deduplicated to a fraction of the size of one
--    that ends with event_time, and is cheaper to maintain. The views look
--    for rare names, whose rows a bitmap scan collects in any order.
--  * the lookups by principal, access key and source address are B-trees
--    that end with event_time, so that "the latest N calls" of even a busy
--    principal reads its index backwards and stops, and a time range within
--    a partition is a range of the index.
--  * errors are a few percent of events, and the root user's calls far
--    fewer: their indexes are partial, and cost a writer nothing for the
--    other events.
--
-- Left out, measured: a B-tree on event_time alone (BRIN does its work for a
-- fraction of the cost), recipient_account_id (few distinct values: a
-- partition scan is as fast), and GIN on resources (the costliest to
-- maintain, for one rare question that a time bound makes cheap enough).
CREATE INDEX cloudtrail_events_time_brin ON cloudtrail_events USING brin (event_time) WITH (autosummarize = on);
CREATE INDEX cloudtrail_events_name ON cloudtrail_events (event_name);
CREATE INDEX cloudtrail_events_principal ON cloudtrail_events (user_identity_arn, event_time);
CREATE INDEX cloudtrail_events_access_key ON cloudtrail_events (user_identity_access_key_id, event_time);
CREATE INDEX cloudtrail_events_source_ip ON cloudtrail_events (source_ip_address, event_time);
CREATE INDEX cloudtrail_events_errors ON cloudtrail_events (error_code, event_time) WHERE error_code IS NOT NULL;
CREATE INDEX cloudtrail_events_root ON cloudtrail_events (event_time) WHERE user_identity_type = 'Root';
