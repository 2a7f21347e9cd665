-- Alerts: what the Sigma rules (PGTRAIL_RULES, docs/alerts.md) raised on
-- newly stored events, and the state of their delivery.
--
--  * cloudtrail_alerts has one row per (rule, event). The writer inserts it
--    in the transaction that inserts the event, and only for an event that
--    transaction inserted: a redelivered object, a second trail's copy of a
--    file or a crash before commit never raises an alert twice, nor loses
--    one. Its id is a UUID derived from the rule's id and the event's key,
--    so that the same alert has the same id wherever it is raised: it is
--    the idempotency key every destination receives (webhook-id, the SNS
--    message's alert_id).
--  * The alerts table is also the outbox: the relay in pgtrail run claims
--    the alerts not yet settled whose next_attempt has come, with FOR
--    UPDATE SKIP LOCKED, so that any number of workers may run it. status
--    says what became of an alert: new (no relay has seen it yet), sending
--    (to be delivered to every destination), sent, throttled (folded into
--    its rule's summary for the window) or stale (its event is older than
--    PGTRAIL_ALERT_MAX_AGE: stored, not sent).
--  * cloudtrail_alert_deliveries has one row per message (an alert or a
--    summary) and destination (sns, webhook, slack) that was tried: its
--    attempts, the last error, and when it was delivered.
--  * cloudtrail_alert_summaries has one row per rule and throttle window:
--    how many of the rule's alerts were sent one by one, and how many were
--    held back and are told in the summary sent when the window closes.
--
-- Alerts are kept when retention drops the partitions of their events:
-- they are few, and what they say stays true.
--
-- The reader may read all three and the views; the writer may insert
-- alerts and change only their delivery columns (status, next_attempt,
-- settled_at), and write the other two tables. Column privileges are
-- enough here: the writer needs no SECURITY DEFINER function to run the
-- relay, and cannot rewrite what an alert says.

CREATE TABLE cloudtrail_alerts (
    id                uuid        PRIMARY KEY,
    rule_id           text        NOT NULL,
    title             text        NOT NULL,
    level             text,
    tags              text[]      NOT NULL DEFAULT '{}',
    author            text,
    rule_file         text,
    event_id          text        NOT NULL,
    event_time        timestamptz NOT NULL,
    event_source      text,
    event_name        text,
    aws_region        text,
    account_id        text,
    principal_arn     text,
    source_ip_address text,
    created           timestamptz NOT NULL DEFAULT now(),
    status            text        NOT NULL DEFAULT 'new'
                      CHECK (status IN ('new', 'sending', 'sent', 'throttled', 'stale')),
    next_attempt      timestamptz NOT NULL DEFAULT now(),
    settled_at        timestamptz,
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    UNIQUE (rule_id, event_id, event_time)
);

COMMENT ON TABLE cloudtrail_alerts IS 'One row per Sigma rule and event that it matched, stored with the event; also the outbox that pgtrail run delivers from.';
COMMENT ON COLUMN cloudtrail_alerts.id IS 'A UUID derived from rule_id, event_id and event_time: the idempotency key that every destination receives.';
COMMENT ON COLUMN cloudtrail_alerts.rule_id IS 'The Sigma rule''s id.';
COMMENT ON COLUMN cloudtrail_alerts.author IS 'The rule''s author, to be shown with the alert (the SigmaHQ rules'' licence asks for it).';
COMMENT ON COLUMN cloudtrail_alerts.account_id IS 'The account the event was recorded in (recipientAccountId, else userIdentity.accountId).';
COMMENT ON COLUMN cloudtrail_alerts.principal_arn IS 'userIdentity.arn of the event.';
COMMENT ON COLUMN cloudtrail_alerts.status IS 'new, sending, sent, throttled (told in its rule''s summary) or stale (older than PGTRAIL_ALERT_MAX_AGE: not sent).';
COMMENT ON COLUMN cloudtrail_alerts.settled_at IS 'When the relay was done with the alert: sent to every destination, throttled or stale. NULL while it waits.';
COMMENT ON COLUMN cloudtrail_alerts.acknowledged_at IS 'Set by an analyst (with the owner''s grant) when the alert is dealt with; the ct_open_alerts_* views leave it out then.';

-- The relay's claim: the unsettled alerts in order of next_attempt.
CREATE INDEX cloudtrail_alerts_due ON cloudtrail_alerts (next_attempt) WHERE settled_at IS NULL;
CREATE INDEX cloudtrail_alerts_created ON cloudtrail_alerts (created);
CREATE INDEX cloudtrail_alerts_event ON cloudtrail_alerts (event_id, event_time);

CREATE TABLE cloudtrail_alert_deliveries (
    message_id   uuid        NOT NULL,
    destination  text        NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    last_attempt timestamptz,
    last_error   text,
    delivered_at timestamptz,
    PRIMARY KEY (message_id, destination)
);

COMMENT ON TABLE cloudtrail_alert_deliveries IS 'One row per alert or summary (message_id) and destination tried: attempts, the last error, and when it was delivered.';

CREATE TABLE cloudtrail_alert_summaries (
    id              uuid        PRIMARY KEY,
    rule_id         text        NOT NULL,
    title           text        NOT NULL,
    level           text,
    author          text,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    sent            integer     NOT NULL DEFAULT 0,
    suppressed      integer     NOT NULL DEFAULT 0,
    first_event_time timestamptz,
    last_event_time  timestamptz,
    next_attempt    timestamptz NOT NULL,
    settled_at      timestamptz,
    UNIQUE (rule_id, window_start)
);

COMMENT ON TABLE cloudtrail_alert_summaries IS 'Per rule and throttle window: the alerts sent one by one (sent) and those held back (suppressed), which a summary sent after window_end tells.';

CREATE INDEX cloudtrail_alert_summaries_due ON cloudtrail_alert_summaries (next_attempt) WHERE settled_at IS NULL;

-- The analyst's views: open (unacknowledged) alerts by rule, by principal
-- and by account, the worst level first. level_rank orders the levels.
CREATE VIEW ct_open_alerts_by_rule AS
SELECT rule_id, title, level, count(*) AS alerts,
    count(DISTINCT principal_arn) AS principals, count(DISTINCT account_id) AS accounts,
    min(event_time) AS first_event_time, max(event_time) AS last_event_time, max(created) AS last_raised
FROM cloudtrail_alerts
WHERE acknowledged_at IS NULL
GROUP BY rule_id, title, level
ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low', 'informational'], level), alerts DESC;
COMMENT ON VIEW ct_open_alerts_by_rule IS 'Unacknowledged alerts per rule: how many, how many principals and accounts, first and last event.';

CREATE VIEW ct_open_alerts_by_principal AS
SELECT principal_arn, account_id, count(*) AS alerts,
    (ARRAY['informational', 'low', 'medium', 'high', 'critical'])[
        max(array_position(ARRAY['informational', 'low', 'medium', 'high', 'critical'], level))] AS max_level,
    array_agg(DISTINCT title ORDER BY title) AS rules,
    min(event_time) AS first_event_time, max(event_time) AS last_event_time
FROM cloudtrail_alerts
WHERE acknowledged_at IS NULL
GROUP BY principal_arn, account_id
ORDER BY max(array_position(ARRAY['informational', 'low', 'medium', 'high', 'critical'], level)) DESC NULLS LAST, alerts DESC;
COMMENT ON VIEW ct_open_alerts_by_principal IS 'Unacknowledged alerts per principal (userIdentity.arn): how many, the worst level, which rules, first and last event.';

CREATE VIEW ct_open_alerts_by_account AS
SELECT account_id, count(*) AS alerts,
    (ARRAY['informational', 'low', 'medium', 'high', 'critical'])[
        max(array_position(ARRAY['informational', 'low', 'medium', 'high', 'critical'], level))] AS max_level,
    count(DISTINCT principal_arn) AS principals, array_agg(DISTINCT title ORDER BY title) AS rules,
    min(event_time) AS first_event_time, max(event_time) AS last_event_time
FROM cloudtrail_alerts
WHERE acknowledged_at IS NULL
GROUP BY account_id
ORDER BY max(array_position(ARRAY['informational', 'low', 'medium', 'high', 'critical'], level)) DESC NULLS LAST, alerts DESC;
COMMENT ON VIEW ct_open_alerts_by_account IS 'Unacknowledged alerts per account: how many, the worst level, how many principals, which rules, first and last event.';

-- Grants, as in 0005_roles.sql, with every name qualified as in
-- 0007_safe_definer_functions.sql.
DO $migration$
DECLARE
    s constant text := pg_catalog.current_schema();
    path constant text := pg_catalog.current_setting('search_path');
    reader constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.reader_role', true), ''), 'pgtrail_reader');
    writer constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.writer_role', true), ''), 'pgtrail_writer');
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    EXECUTE format('GRANT SELECT ON %1$I.cloudtrail_alerts, %1$I.cloudtrail_alert_deliveries, %1$I.cloudtrail_alert_summaries,
        %1$I.ct_open_alerts_by_rule, %1$I.ct_open_alerts_by_principal, %1$I.ct_open_alerts_by_account TO %2$I', s, reader);
    -- INSERT … ON CONFLICT and the relay's claim (FOR UPDATE) need SELECT
    -- and an UPDATE privilege; only the delivery columns may change.
    EXECUTE format('GRANT SELECT, INSERT ON %I.cloudtrail_alerts TO %I', s, writer);
    EXECUTE format('GRANT UPDATE (status, next_attempt, settled_at) ON %I.cloudtrail_alerts TO %I', s, writer);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %1$I.cloudtrail_alert_deliveries, %1$I.cloudtrail_alert_summaries TO %2$I', s, writer);
    PERFORM pg_catalog.set_config('search_path', path, true);
END
$migration$;
