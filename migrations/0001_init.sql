-- pgtrail's tables. Column names are a contract with analysts: extend, never rename.

-- One row per CloudTrail event, range-partitioned by day on event_time.
-- The writer creates a day's partition on demand (pgtrail_ensure_partition);
-- there is no default partition, so no row can land in the wrong place.
CREATE TABLE cloudtrail_events (
    event_id                    text        NOT NULL,
    event_time                  timestamptz NOT NULL,
    event_version               text,
    event_source                text,
    event_name                  text,
    event_type                  text,
    event_category              text,
    aws_region                  text,
    source_ip_address           text,
    user_agent                  text,
    user_identity_type          text,
    user_identity_arn           text,
    user_identity_account_id    text,
    user_identity_principal_id  text,
    user_identity_access_key_id text,
    user_identity_user_name     text,
    session_issuer_arn          text,
    session_mfa_authenticated   boolean,
    invoked_by                  text,
    error_code                  text,
    error_message               text,
    request_id                  text,
    read_only                   boolean,
    management_event            boolean,
    recipient_account_id        text,
    shared_event_id             text,
    vpc_endpoint_id             text,
    request_parameters          jsonb,
    response_elements           jsonb,
    additional_event_data       jsonb,
    resources                   jsonb,
    record                      jsonb       NOT NULL,
    s3_bucket                   text        NOT NULL,
    s3_key                      text        NOT NULL,
    ingested_at                 timestamptz NOT NULL DEFAULT now(),
    -- The same eventID always carries the same eventTime, so this key
    -- deduplicates across redeliveries, files and trails.
    PRIMARY KEY (event_id, event_time)
) PARTITION BY RANGE (event_time);

COMMENT ON TABLE cloudtrail_events IS 'One row per CloudTrail event, partitioned by day (UTC) on event_time.';
COMMENT ON COLUMN cloudtrail_events.event_id IS 'CloudTrail eventID; for a record without one, "sha256:" and the hex SHA-256 of its bytes.';
COMMENT ON COLUMN cloudtrail_events.source_ip_address IS 'Text, not inet: also service names, "AWS Internal" and comma-separated lists.';
COMMENT ON COLUMN cloudtrail_events.record IS 'The complete original record.';
COMMENT ON COLUMN cloudtrail_events.s3_key IS 'The object (or, for pgtrail ingest, the local file) the event was first read from.';

-- What could not become an event: kept with its reason and raw text.
CREATE TABLE cloudtrail_rejects (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    s3_bucket    text        NOT NULL,
    s3_key       text        NOT NULL,
    record_index integer     NOT NULL,
    reason       text        NOT NULL,
    raw          text        NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (s3_bucket, s3_key, record_index)
);

COMMENT ON TABLE cloudtrail_rejects IS 'Records that could not become events (for example, no parseable eventTime), with the reason and the raw text.';

-- The ledger: one row per processed object, written in the same transaction
-- as the object's events.
CREATE TABLE cloudtrail_objects (
    s3_bucket     text        NOT NULL,
    s3_key        text        NOT NULL,
    size          bigint      NOT NULL,
    events        integer     NOT NULL,
    inserted      integer     NOT NULL,
    duplicates    integer     NOT NULL,
    rejected      integer     NOT NULL,
    message_id    text,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    deliveries    integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (s3_bucket, s3_key)
);

COMMENT ON TABLE cloudtrail_objects IS 'One row per processed object (the ledger), committed together with its events.';
CREATE INDEX cloudtrail_objects_processed_at ON cloudtrail_objects (processed_at);

-- pgtrail_ensure_partition creates the partition of cloudtrail_events that
-- holds the UTC day "day", unless it exists. It runs with its owner's rights
-- so that the writer role needs no power over the table itself, and takes an
-- advisory lock so that concurrent writers do not race.
CREATE FUNCTION pgtrail_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    part text := 'cloudtrail_events_' || to_char(day, 'YYYYMMDD');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pgtrail.partition'));
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF cloudtrail_events FOR VALUES FROM (%L) TO (%L)',
        part, day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
    RETURN true;
END
$$;
