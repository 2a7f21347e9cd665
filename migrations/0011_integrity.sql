-- Integrity: what pgtrail knows of CloudTrail's digest files and of the log
-- files they list (docs/integrity.md).
--
--  * The ledger keeps, for each object, the SHA-256 of its uncompressed
--    bytes as the worker inflated it (the hash a digest lists), and whether
--    bytes followed its gzip stream. Both are computed on the ingest path:
--    the object is read once.
--  * cloudtrail_digests has one row per digest file checked: its chain
--    (trail, account, region, hourly or backfill), period, and verdict:
--    valid, or invalid with the reason validate-logs would print. A digest
--    that names no previous digest starts a chain after a gap: gap_before
--    says so; it is reported, not a failure.
--  * cloudtrail_digest_files has one row per log file that a digest lists,
--    or that no digest lists although a valid digest of its account and
--    region covers its time: the listed hash, and the verdict.
--
-- The reader may read all of it; the writer inserts and updates verdicts.

ALTER TABLE cloudtrail_objects
    ADD COLUMN content_sha256 bytea,
    ADD COLUMN trailing_data boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN cloudtrail_objects.content_sha256 IS 'SHA-256 of the object''s uncompressed bytes (its first gzip member), computed while it was ingested: the hash a digest file lists. NULL for an object that is not gzip, or ingested before 0011.';
COMMENT ON COLUMN cloudtrail_objects.trailing_data IS 'True when bytes followed the object''s first gzip stream (validate-logs: unexpected data after end of compressed stream).';

CREATE TABLE cloudtrail_digests (
    s3_bucket      text        NOT NULL,
    s3_key         text        NOT NULL,
    org_id         text        NOT NULL DEFAULT '',
    account_id     text        NOT NULL,
    region         text        NOT NULL,
    trail          text        NOT NULL,
    home_region    text        NOT NULL,
    chain          text        NOT NULL CHECK (chain IN ('normal', 'backfill')),
    start_time     timestamptz,
    end_time       timestamptz NOT NULL,
    verdict        text        NOT NULL CHECK (verdict IN ('valid', 'invalid')),
    reason         text,
    gap_before     boolean     NOT NULL DEFAULT false,
    chain_start    timestamptz,
    hash_value     text,
    signature      text,
    log_files      integer     NOT NULL DEFAULT 0,
    checked_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (s3_bucket, s3_key)
);

COMMENT ON TABLE cloudtrail_digests IS 'One row per CloudTrail digest file checked: signature, location and link to the previous digest.';
COMMENT ON COLUMN cloudtrail_digests.chain IS 'normal (hourly digests) or backfill (…_backfill.json.gz): separate chains.';
COMMENT ON COLUMN cloudtrail_digests.verdict IS 'valid, or invalid with the reason in reason (the words validate-logs prints after INVALID:).';
COMMENT ON COLUMN cloudtrail_digests.gap_before IS 'The digest names no previous digest: the first of its trail, or the first after logging or validation was off. Reported, not a failure.';
COMMENT ON COLUMN cloudtrail_digests.chain_start IS 'The start time of the first digest of the unbroken chain this digest belongs to, as far as pgtrail has seen it.';
COMMENT ON COLUMN cloudtrail_digests.hash_value IS 'Hex SHA-256 of the digest''s uncompressed body (the next digest''s previousDigestHashValue).';
COMMENT ON COLUMN cloudtrail_digests.signature IS 'The digest''s hex signature, from its S3 metadata (the next digest''s previousDigestSignature).';
CREATE INDEX cloudtrail_digests_end_time ON cloudtrail_digests (end_time);

CREATE TABLE cloudtrail_digest_files (
    s3_bucket       text        NOT NULL,
    s3_key          text        NOT NULL,
    digest_bucket   text,
    digest_key      text,
    account_id      text        NOT NULL,
    region          text        NOT NULL,
    expected_sha256 text,
    verdict         text        NOT NULL CHECK (verdict IN
                    ('verified', 'hash_mismatch', 'trailing_data', 'not_hashed', 'listed_not_ingested', 'not_listed')),
    digest_end      timestamptz,
    checked_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (s3_bucket, s3_key)
);

COMMENT ON TABLE cloudtrail_digest_files IS 'One row per log file that a digest lists (or that no digest lists past the grace period): the listed hash and the verdict.';
COMMENT ON COLUMN cloudtrail_digest_files.digest_key IS 'The digest that lists the file; for not_listed, the digest whose check found it unlisted.';
COMMENT ON COLUMN cloudtrail_digest_files.expected_sha256 IS 'The hashValue the digest lists: hex SHA-256 of the uncompressed log file.';
COMMENT ON COLUMN cloudtrail_digest_files.verdict IS 'verified; hash_mismatch; trailing_data (bytes after the gzip stream); not_hashed (ingested before 0011: cannot be checked); listed_not_ingested (listed, not in the ledger: not yet arrived, or deleted); not_listed (ingested, but no digest lists it after the grace period).';
COMMENT ON COLUMN cloudtrail_digest_files.digest_end IS 'The end time of the digest that lists the file, or that found it unlisted.';
CREATE INDEX cloudtrail_digest_files_digest_end ON cloudtrail_digest_files (digest_end);
CREATE INDEX cloudtrail_digest_files_pending ON cloudtrail_digest_files (s3_bucket, s3_key) WHERE verdict = 'listed_not_ingested';

-- The analyst's views: log files not verified (failed, missing, or not yet
-- covered by any digest), and digests that failed or follow a gap.
CREATE VIEW ct_integrity_files AS
SELECT f.s3_bucket, f.s3_key, f.verdict, f.digest_bucket, f.digest_key, f.expected_sha256,
    pg_catalog.encode(o.content_sha256, 'hex') AS ingested_sha256, o.processed_at, f.digest_end, f.checked_at
FROM cloudtrail_digest_files f
LEFT JOIN cloudtrail_objects o ON o.s3_bucket = f.s3_bucket AND o.s3_key = f.s3_key
WHERE f.verdict <> 'verified'
UNION ALL
SELECT o.s3_bucket, o.s3_key, 'not_yet_covered', NULL, NULL, NULL,
    pg_catalog.encode(o.content_sha256, 'hex'), o.processed_at, NULL, NULL
FROM cloudtrail_objects o
WHERE o.s3_key LIKE '%/CloudTrail/%'
  AND NOT EXISTS (SELECT 1 FROM cloudtrail_digest_files f WHERE f.s3_bucket = o.s3_bucket AND f.s3_key = o.s3_key);
COMMENT ON VIEW ct_integrity_files IS 'Log files that no valid digest has verified: failed (hash_mismatch, trailing_data, not_listed), unchecked (not_hashed), missing (listed_not_ingested) or not yet covered by a digest.';

CREATE VIEW ct_integrity_digests AS
SELECT s3_bucket, s3_key, org_id, account_id, region, trail, chain, start_time, end_time,
    verdict, reason, gap_before, checked_at
FROM cloudtrail_digests
WHERE verdict <> 'valid' OR gap_before
ORDER BY end_time DESC;
COMMENT ON VIEW ct_integrity_digests IS 'Digests that failed validation, and those that start a chain after a gap.';

-- Grants, as in 0009_alerts.sql.
DO $migration$
DECLARE
    s constant text := pg_catalog.current_schema();
    path constant text := pg_catalog.current_setting('search_path');
    reader constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.reader_role', true), ''), 'pgtrail_reader');
    writer constant text := coalesce(nullif(pg_catalog.current_setting('pgtrail.writer_role', true), ''), 'pgtrail_writer');
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    EXECUTE format('GRANT SELECT ON %1$I.cloudtrail_digests, %1$I.cloudtrail_digest_files,
        %1$I.ct_integrity_files, %1$I.ct_integrity_digests TO %2$I', s, reader);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %1$I.cloudtrail_digests, %1$I.cloudtrail_digest_files TO %2$I', s, writer);
    PERFORM pg_catalog.set_config('search_path', path, true);
END
$migration$;
