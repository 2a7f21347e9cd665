-- The last failure of each object, so that the reason a message went to the
-- dead-letter queue survives the worker's log: pgtrail dlq list shows it
-- beside the objects each message names. The worker writes a row when it
-- gives up on an object (a permanent error, or the retries spent), replacing
-- the one before; a later success leaves it, and the ledger
-- (cloudtrail_objects) then says the object was committed after all.
CREATE TABLE cloudtrail_failures (
    s3_bucket   text        NOT NULL,
    s3_key      text        NOT NULL,
    message_id  text,
    error       text        NOT NULL,
    permanent   boolean     NOT NULL,
    failures    integer     NOT NULL DEFAULT 1,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (s3_bucket, s3_key)
);

COMMENT ON TABLE cloudtrail_failures IS 'The last error of each object that pgtrail gave up on, for pgtrail dlq list; the ledger says whether it was committed later.';
COMMENT ON COLUMN cloudtrail_failures.s3_bucket IS 'The bucket of the object (empty for a local file).';
COMMENT ON COLUMN cloudtrail_failures.s3_key IS 'The key of the object.';
COMMENT ON COLUMN cloudtrail_failures.message_id IS 'The SQS message that named the object when it last failed.';
COMMENT ON COLUMN cloudtrail_failures.error IS 'The error of the last failure, as the worker logged it.';
COMMENT ON COLUMN cloudtrail_failures.permanent IS 'True when the error was permanent (retrying cannot help), false when the retries were spent.';
COMMENT ON COLUMN cloudtrail_failures.failures IS 'How many times the object has failed.';
COMMENT ON COLUMN cloudtrail_failures.failed_at IS 'When the object last failed.';
CREATE INDEX cloudtrail_failures_failed_at ON cloudtrail_failures (failed_at);

DO $$
DECLARE
    reader text := coalesce(nullif(current_setting('pgtrail.reader_role', true), ''), 'pgtrail_reader');
    writer text := coalesce(nullif(current_setting('pgtrail.writer_role', true), ''), 'pgtrail_writer');
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = reader) THEN
        EXECUTE format('GRANT SELECT ON cloudtrail_failures TO %I', reader);
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = writer) THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON cloudtrail_failures TO %I', writer);
    END IF;
END
$$;

-- Every column of cloudtrail_events described where analysts look for it
-- (\d+ cloudtrail_events); the text is the README's schema table.
COMMENT ON COLUMN cloudtrail_events.event_id IS 'CloudTrail eventID; for a record without one, "sha256:" and the hex SHA-256 of its bytes.';
COMMENT ON COLUMN cloudtrail_events.event_time IS 'eventTime; the day (UTC) picks the partition.';
COMMENT ON COLUMN cloudtrail_events.event_version IS 'eventVersion.';
COMMENT ON COLUMN cloudtrail_events.event_source IS 'eventSource (for Insight events, from insightDetails).';
COMMENT ON COLUMN cloudtrail_events.event_name IS 'eventName (for Insight events, from insightDetails).';
COMMENT ON COLUMN cloudtrail_events.event_type IS 'eventType.';
COMMENT ON COLUMN cloudtrail_events.event_category IS 'eventCategory.';
COMMENT ON COLUMN cloudtrail_events.aws_region IS 'awsRegion.';
COMMENT ON COLUMN cloudtrail_events.source_ip_address IS 'sourceIPAddress. Text, not inet: also service names, "AWS Internal" and comma-separated lists.';
COMMENT ON COLUMN cloudtrail_events.user_agent IS 'userAgent.';
COMMENT ON COLUMN cloudtrail_events.user_identity_type IS 'userIdentity.type.';
COMMENT ON COLUMN cloudtrail_events.user_identity_arn IS 'userIdentity.arn.';
COMMENT ON COLUMN cloudtrail_events.user_identity_account_id IS 'userIdentity.accountId.';
COMMENT ON COLUMN cloudtrail_events.user_identity_principal_id IS 'userIdentity.principalId.';
COMMENT ON COLUMN cloudtrail_events.user_identity_access_key_id IS 'userIdentity.accessKeyId.';
COMMENT ON COLUMN cloudtrail_events.user_identity_user_name IS 'userIdentity.userName.';
COMMENT ON COLUMN cloudtrail_events.session_issuer_arn IS 'userIdentity.sessionContext.sessionIssuer.arn.';
COMMENT ON COLUMN cloudtrail_events.session_mfa_authenticated IS 'userIdentity.sessionContext.attributes.mfaAuthenticated.';
COMMENT ON COLUMN cloudtrail_events.invoked_by IS 'userIdentity.invokedBy.';
COMMENT ON COLUMN cloudtrail_events.error_code IS 'errorCode.';
COMMENT ON COLUMN cloudtrail_events.error_message IS 'errorMessage.';
COMMENT ON COLUMN cloudtrail_events.request_id IS 'requestID.';
COMMENT ON COLUMN cloudtrail_events.read_only IS 'readOnly (the strings "true" and "false" read as booleans).';
COMMENT ON COLUMN cloudtrail_events.management_event IS 'managementEvent (the strings "true" and "false" read as booleans).';
COMMENT ON COLUMN cloudtrail_events.recipient_account_id IS 'recipientAccountId.';
COMMENT ON COLUMN cloudtrail_events.shared_event_id IS 'sharedEventID.';
COMMENT ON COLUMN cloudtrail_events.vpc_endpoint_id IS 'vpcEndpointId.';
COMMENT ON COLUMN cloudtrail_events.request_parameters IS 'requestParameters.';
COMMENT ON COLUMN cloudtrail_events.response_elements IS 'responseElements.';
COMMENT ON COLUMN cloudtrail_events.additional_event_data IS 'additionalEventData.';
COMMENT ON COLUMN cloudtrail_events.resources IS 'resources.';
COMMENT ON COLUMN cloudtrail_events.record IS 'The complete original record.';
COMMENT ON COLUMN cloudtrail_events.s3_bucket IS 'The bucket of the object the event was first read from (empty for pgtrail ingest).';
COMMENT ON COLUMN cloudtrail_events.s3_key IS 'The object (or, for pgtrail ingest, the local file) the event was first read from.';
COMMENT ON COLUMN cloudtrail_events.ingested_at IS 'When pgtrail stored the event.';
