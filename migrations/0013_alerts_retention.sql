-- CIS 4.10 (5.10 in v6 and later) counts ModifySecurityGroupRules, the
-- call that changes a security group's rules in place since 2021: the
-- built-in rule cis_security_group_changes has it, and the view now does
-- too. CREATE OR REPLACE keeps the columns, the grants and ct_cis_findings.
CREATE OR REPLACE VIEW ct_security_group_changes AS
SELECT event_time, event_id, recipient_account_id, aws_region, event_source, event_name,
    user_identity_type, user_identity_arn, user_identity_access_key_id, source_ip_address,
    user_agent, error_code, error_message, request_parameters, response_elements,
    additional_event_data
FROM cloudtrail_events
WHERE event_source = 'ec2.amazonaws.com' AND event_name IN (
    'AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupEgress',
    'RevokeSecurityGroupIngress', 'RevokeSecurityGroupEgress',
    'CreateSecurityGroup', 'DeleteSecurityGroup', 'ModifySecurityGroupRules');
COMMENT ON VIEW ct_security_group_changes IS 'CIS AWS Foundations 4.10 (Security group changes): EC2 security groups created, deleted, or their rules changed (ModifySecurityGroupRules included).';

-- Retention of alerts. Until now alerts were kept when retention dropped
-- their events' partitions; they now go with them once the relay is done
-- with them: pgtrail_delete_alerts_before deletes the settled alerts (sent,
-- throttled or stale) whose event is older than the cutoff, the settled
-- throttle summaries whose window ended by then, and the delivery records
-- of both. An alert still waiting for delivery is kept whatever its age:
-- retention never loses one before it is delivered.
--
-- The writer may not delete alerts (0009: it may change their delivery
-- columns only), so this is a SECURITY DEFINER function, built as
-- 0007_safe_definer_functions.sql builds pgtrail_drop_partitions_before:
-- search_path pg_catalog, pg_temp; every pgtrail name qualified with the
-- schema this migration runs in; the same retention floor, so that a stolen
-- writer credential cannot delete more than retention allows; EXECUTE for
-- the writer only.
DO $migration$
DECLARE
    s constant text := pg_catalog.current_schema();
    path constant text := pg_catalog.current_setting('search_path');
    writer constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.writer_role', true), ''), 'pgtrail_writer');
    body text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF s IS NULL OR to_regclass(format('%I.cloudtrail_alerts', s)) IS NULL THEN
        RAISE EXCEPTION 'pgtrail: cloudtrail_alerts is not in schema %, the first of the search_path (%)', s, path
            USING HINT = 'Migrate with the search_path that created pgtrail''s tables.';
    END IF;

    body := $body$
DECLARE
    sch constant text := @schema@;
    limit_ts constant timestamptz := cutoff::timestamp AT TIME ZONE 'UTC';
    today constant date := (now() AT TIME ZONE 'UTC')::date;
    floor_days integer;
BEGIN
    IF cutoff > today THEN
        RAISE EXCEPTION 'pgtrail: retention cutoff % is after today (UTC); refusing to delete current alerts', cutoff;
    END IF;
    EXECUTE format('SELECT days FROM %I.pgtrail_retention_floor', sch) INTO floor_days;
    IF floor_days IS NOT NULL AND cutoff > today - floor_days THEN
        RAISE EXCEPTION 'pgtrail: retention cutoff % is after %, the retention floor of % days (UTC); refusing to delete younger alerts',
                cutoff, today - floor_days, floor_days
            USING HINT = 'The owner sets the floor: pgtrail migrate with PGTRAIL_RETENTION_DAYS (docs/analysts.md).';
    END IF;
    IF dry_run THEN
        EXECUTE format($q$SELECT
                (SELECT count(*) FROM %1$I.cloudtrail_alerts WHERE settled_at IS NOT NULL AND event_time < $1),
                (SELECT count(*) FROM %1$I.cloudtrail_alert_summaries WHERE settled_at IS NOT NULL AND window_end <= $1),
                (SELECT count(*) FROM %1$I.cloudtrail_alert_deliveries d WHERE d.message_id IN (
                    SELECT id FROM %1$I.cloudtrail_alerts WHERE settled_at IS NOT NULL AND event_time < $1
                    UNION ALL
                    SELECT id FROM %1$I.cloudtrail_alert_summaries WHERE settled_at IS NOT NULL AND window_end <= $1))$q$, sch)
            INTO alerts, summaries, deliveries USING limit_ts;
    ELSE
        EXECUTE format($q$WITH
                a AS (DELETE FROM %1$I.cloudtrail_alerts WHERE settled_at IS NOT NULL AND event_time < $1 RETURNING id),
                s AS (DELETE FROM %1$I.cloudtrail_alert_summaries WHERE settled_at IS NOT NULL AND window_end <= $1 RETURNING id),
                d AS (DELETE FROM %1$I.cloudtrail_alert_deliveries WHERE message_id IN (SELECT id FROM a UNION ALL SELECT id FROM s)
                      RETURNING 1)
            SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM s), (SELECT count(*) FROM d)$q$, sch)
            INTO alerts, summaries, deliveries USING limit_ts;
    END IF;
    RETURN NEXT;
END
$body$;
    EXECUTE format($ddl$CREATE OR REPLACE FUNCTION %I.pgtrail_delete_alerts_before(cutoff date, dry_run boolean DEFAULT false)
        RETURNS TABLE (alerts bigint, summaries bigint, deliveries bigint)
        LANGUAGE plpgsql STRICT SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp SET timezone = 'UTC' SET datestyle = 'ISO, YMD'
        AS %L$ddl$, s, replace(body, '@schema@', quote_literal(s)));
    EXECUTE format('REVOKE ALL ON FUNCTION %I.pgtrail_delete_alerts_before(date, boolean) FROM PUBLIC', s);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.pgtrail_delete_alerts_before(date, boolean) TO %I', s, writer);

    PERFORM set_config('search_path', path, true);
END
$migration$;
