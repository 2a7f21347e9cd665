package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// Integrity: the verdicts on CloudTrail's digest files and on the log
// files they list (migrations/0011_integrity.sql, docs/integrity.md). The
// ledger keeps the hash of each object as it was ingested; a digest's log
// files are compared with it when the digest is recorded, and a log file
// that arrives after its digest is compared when its ledger row is written
// (queueLateFiles). A failure raises an alert of the rule IntegrityRuleID
// in the same transaction.

// IntegrityRuleID is the rule id of the alerts that integrity failures
// raise.
const IntegrityRuleID = "pgtrail-integrity"

// The verdicts on a log file, as cloudtrail_digest_files stores them.
const (
	FileVerified          = "verified"
	FileHashMismatch      = "hash_mismatch"
	FileTrailingData      = "trailing_data"
	FileListedNotIngested = "listed_not_ingested"
	FileNotListed         = "not_listed"
	// FileNotHashed is a listed log file ingested before pgtrail hashed
	// what it ingests: it cannot be checked, and is no failure.
	FileNotHashed = "not_hashed"
)

// fileVerdict is the SQL of a listed log file's verdict, given the ledger's
// hash (sha, bytea), trailing flag (trailing) and the listed hex hash
// (expected): cloudtrail.CheckDigestLogFile's order, in SQL. sha is NULL
// only in a ledger row written before 0011 (an object that fails to
// inflate is never committed; one that is not gzip is no CloudTrail
// delivery): such a file cannot be checked, and is not_hashed.
const fileVerdict = `CASE
        WHEN %[1]s IS NULL THEN 'not_hashed'
        WHEN pg_catalog.encode(%[1]s, 'hex') <> pg_catalog.lower(%[3]s) THEN 'hash_mismatch'
        WHEN %[2]s THEN 'trailing_data'
        ELSE 'verified' END`

// failedFile is the SQL condition of a file verdict that is a failure.
const failedFile = `verdict IN ('hash_mismatch', 'trailing_data', 'not_listed')`

// integrityAlerts inserts an alert of IntegrityRuleID for each row of the
// relation %s, which has the columns what (the s3:// location of the file
// or digest), why (the reason), at (the digest's end time), account_id and
// region. The alert's id is derived from the rule, the location and the
// reason, so that the same failure found again raises nothing new.
const integrityAlerts = `INSERT INTO cloudtrail_alerts
        (id, rule_id, title, level, tags, event_id, event_time, event_source, aws_region, account_id)
    SELECT pg_catalog.md5('` + IntegrityRuleID + `|' || b.what || '|' || b.why)::uuid, '` + IntegrityRuleID + `',
        'CloudTrail integrity: ' || b.why, 'high', '{integrity}', b.what, b.at, 'cloudtrail.amazonaws.com',
        b.region, b.account_id
    FROM %s b
    ON CONFLICT DO NOTHING`

// lateFiles checks the log files just written against the hashes that
// digests recorded before they arrived, and raises the alerts of those
// that fail.
var lateFiles = `WITH got AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::boolean[]) AS g(s3_bucket, s3_key, sha, after_gzip)
), upd AS (
    UPDATE cloudtrail_digest_files f SET
        verdict = ` + fmt.Sprintf(fileVerdict, "g.sha", "g.after_gzip", "f.expected_sha256") + `,
        checked_at = now()
    FROM got g
    WHERE f.s3_bucket = g.s3_bucket AND f.s3_key = g.s3_key AND f.verdict = 'listed_not_ingested'
    RETURNING f.s3_bucket, f.s3_key, f.verdict, f.account_id, f.region, f.digest_end
), bad AS (
    SELECT 's3://' || s3_bucket || '/' || s3_key AS what, verdict AS why, digest_end AS at, account_id, region
    FROM upd WHERE ` + failedFile + `
) ` + fmt.Sprintf(integrityAlerts, "bad")

// queueLateFiles queues the check of objs against digests that listed
// them before they arrived.
func queueLateFiles(batch *pgx.Batch, objs []*Object) {
	buckets := make([]string, len(objs))
	keys := make([]string, len(objs))
	shas := make([][]byte, len(objs))
	trailing := make([]bool, len(objs))
	for i, o := range objs {
		buckets[i], keys[i], shas[i], trailing[i] = o.Bucket, o.Key, o.contentSHA256(), o.Read.Trailing
	}
	batch.Queue(lateFiles, buckets, keys, shas, trailing)
}

// DigestRecord is the verdict on one digest file.
type DigestRecord struct {
	// Bucket and Key locate the digest as it was read.
	Bucket, Key string
	// Chain is the digest's chain, from its key.
	Chain cloudtrail.DigestChain
	// Start and End are the digest's period; Start is zero when the
	// digest could not be parsed (End is then the key's).
	Start, End time.Time
	// Valid is the verdict; Reason says why a digest is invalid, in
	// validate-logs' words.
	Valid  bool
	Reason string
	// GapBefore says the digest names no previous digest.
	GapBefore bool
	// ChainStart is the start of the first digest of the unbroken chain.
	ChainStart time.Time
	// HashValue and Signature are what the next digest must record of
	// this one; empty when the digest could not be read.
	HashValue, Signature string
	// LogFiles counts the log files it lists.
	LogFiles int
}

// Ref returns what the next digest should record of r.
func (r *DigestRecord) Ref() cloudtrail.DigestRef {
	return cloudtrail.DigestRef{Bucket: r.Bucket, Object: r.Key, HashValue: r.HashValue, Signature: r.Signature}
}

// Sweep asks RecordDigest to mark not_listed the log files that the ledger
// holds under Bucket and Prefixes (day folders of the digest's account and
// region), delivered (by their key's time) from From to To, that no digest
// lists.
type Sweep struct {
	Bucket   string
	Prefixes []string
	From, To time.Time
}

// DigestFiles counts a recorded digest's log files by verdict.
type DigestFiles map[string]int

// Failed counts the failures among them.
func (f DigestFiles) Failed() int {
	return f[FileHashMismatch] + f[FileTrailingData] + f[FileNotListed]
}

const selectDigest = `SELECT s3_bucket, s3_key, org_id, account_id, region, trail, home_region, chain = 'backfill',
    coalesce(start_time, end_time), end_time, verdict = 'valid', coalesce(reason, ''), gap_before,
    coalesce(chain_start, end_time), coalesce(hash_value, ''), coalesce(signature, ''), log_files
    FROM cloudtrail_digests WHERE s3_bucket = $1 AND s3_key = $2`

// Digest returns the stored verdict on the digest at bucket and key, and
// false if there is none.
func (p *Postgres) Digest(ctx context.Context, bucket, key string) (DigestRecord, bool, error) {
	var r DigestRecord
	c := &r.Chain
	err := p.pool.QueryRow(ctx, selectDigest, bucket, key).Scan(&r.Bucket, &r.Key, &c.OrgID, &c.AccountID, &c.Region,
		&c.Trail, &c.HomeRegion, &c.Backfill, &r.Start, &r.End, &r.Valid, &r.Reason, &r.GapBefore, &r.ChainStart,
		&r.HashValue, &r.Signature, &r.LogFiles)
	if errors.Is(err, pgx.ErrNoRows) {
		return DigestRecord{}, false, nil
	}
	if err != nil {
		return DigestRecord{}, false, fmt.Errorf("postgres: digest lookup: %w", classify(err))
	}
	return r, true, nil
}

const upsertDigest = `INSERT INTO cloudtrail_digests (s3_bucket, s3_key, org_id, account_id, region, trail, home_region,
        chain, start_time, end_time, verdict, reason, gap_before, chain_start, hash_value, signature, log_files, checked_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN 'backfill' ELSE 'normal' END, $9, $10,
        CASE WHEN $11 THEN 'valid' ELSE 'invalid' END, NULLIF($12, ''), $13, $14, NULLIF($15, ''), NULLIF($16, ''), $17, now())
    ON CONFLICT (s3_bucket, s3_key) DO UPDATE SET
        start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time, verdict = EXCLUDED.verdict,
        reason = EXCLUDED.reason, gap_before = EXCLUDED.gap_before, chain_start = EXCLUDED.chain_start,
        hash_value = EXCLUDED.hash_value, signature = EXCLUDED.signature, log_files = EXCLUDED.log_files,
        checked_at = EXCLUDED.checked_at`

// digestAlert raises the alert of an invalid digest.
var digestAlert = fmt.Sprintf(integrityAlerts,
	`(SELECT 's3://' || $1::text || '/' || $2::text AS what, 'digest ' || $3::text AS why,
        $4::timestamptz AS at, $5::text AS account_id, $6::text AS region)`)

// recordFiles records a digest's log files, each compared with the ledger,
// and raises the alerts of those that fail. $1, $2: the digest; $3, $4:
// its account and region; $5: its end; $6–$8: the files' buckets, keys
// and listed hashes.
var recordFiles = `WITH listed AS (
    SELECT l.s3_bucket, l.s3_key, l.hash,
        CASE WHEN o.s3_key IS NULL THEN 'listed_not_ingested'
        ELSE ` + fmt.Sprintf(fileVerdict, "o.content_sha256", "o.trailing_data", "l.hash") + ` END AS verdict
    FROM unnest($6::text[], $7::text[], $8::text[]) AS l(s3_bucket, s3_key, hash)
    LEFT JOIN cloudtrail_objects o ON o.s3_bucket = l.s3_bucket AND o.s3_key = l.s3_key
), ins AS (
    INSERT INTO cloudtrail_digest_files AS f
        (s3_bucket, s3_key, digest_bucket, digest_key, account_id, region, expected_sha256, verdict, digest_end)
    SELECT s3_bucket, s3_key, $1, $2, $3, $4, hash, verdict, $5 FROM listed
    ON CONFLICT (s3_bucket, s3_key) DO UPDATE SET
        digest_bucket = EXCLUDED.digest_bucket, digest_key = EXCLUDED.digest_key,
        expected_sha256 = EXCLUDED.expected_sha256, verdict = EXCLUDED.verdict,
        digest_end = EXCLUDED.digest_end, checked_at = EXCLUDED.checked_at
    RETURNING verdict, s3_bucket, s3_key
), bad AS (
    SELECT 's3://' || s3_bucket || '/' || s3_key AS what, verdict AS why, $5::timestamptz AS at,
        $3::text AS account_id, $4::text AS region
    FROM ins WHERE ` + failedFile + `
), alerted AS (` + fmt.Sprintf(integrityAlerts, "bad") + `)
SELECT verdict, count(*) FROM ins GROUP BY verdict`

// sweepFiles marks not_listed the ledger's log files under the day folders
// $2 of bucket $1 whose key's time is from $7 to $8 and that no digest
// lists, and raises their alerts. $3, $4: the digest; $5, $6: its account
// and region. A log file's key holds its delivery time to the minute, in
// UTC: ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_UNIQUE.json.gz.
var sweepFiles = `WITH cand AS (
    SELECT o.s3_bucket, o.s3_key,
        pg_catalog.to_timestamp(pg_catalog.substring(o.s3_key, '_([0-9]{8}T[0-9]{4}Z)_[^/]*$'),
            'YYYYMMDD"T"HH24MI"Z"')::timestamp AT TIME ZONE 'UTC' AS at
    FROM cloudtrail_objects o
    WHERE o.s3_bucket = $1
      AND EXISTS (SELECT 1 FROM unnest($2::text[]) p(prefix) WHERE pg_catalog.starts_with(o.s3_key, p.prefix))
      AND NOT EXISTS (SELECT 1 FROM cloudtrail_digest_files f WHERE f.s3_bucket = o.s3_bucket AND f.s3_key = o.s3_key)
), ins AS (
    INSERT INTO cloudtrail_digest_files (s3_bucket, s3_key, digest_bucket, digest_key, account_id, region, verdict, digest_end)
    SELECT s3_bucket, s3_key, $3, $4, $5, $6, 'not_listed', $8 FROM cand WHERE at >= $7 AND at <= $8
    ON CONFLICT DO NOTHING
    RETURNING s3_bucket, s3_key
), bad AS (
    SELECT 's3://' || s3_bucket || '/' || s3_key AS what, 'not_listed'::text AS why, $8::timestamptz AS at,
        $5::text AS account_id, $6::text AS region
    FROM ins
), alerted AS (` + fmt.Sprintf(integrityAlerts, "bad") + `)
SELECT count(*) FROM ins`

// stalePending checks against the ledger the log files of account $1 and
// region $2 still listed_not_ingested: a file committed while its digest
// was being recorded may have missed both checks, each transaction not
// seeing the other's rows; the next digest of its account and region
// settles it.
var stalePending = `WITH upd AS (
    UPDATE cloudtrail_digest_files f SET
        verdict = ` + fmt.Sprintf(fileVerdict, "o.content_sha256", "o.trailing_data", "f.expected_sha256") + `,
        checked_at = now()
    FROM cloudtrail_objects o
    WHERE f.verdict = 'listed_not_ingested' AND f.account_id = $1 AND f.region = $2
      AND o.s3_bucket = f.s3_bucket AND o.s3_key = f.s3_key
    RETURNING f.s3_bucket, f.s3_key, f.verdict, f.account_id, f.region, f.digest_end
), bad AS (
    SELECT 's3://' || s3_bucket || '/' || s3_key AS what, verdict AS why, digest_end AS at, account_id, region
    FROM upd WHERE ` + failedFile + `
) ` + fmt.Sprintf(integrityAlerts, "bad")

// RecordDigest stores the verdict on a digest in one transaction: the
// digest's row; when it is valid, a row per log file it lists, compared
// with the ledger, and, with sweep, the not_listed rows of the log files
// no digest lists; and the alerts of every failure. It returns the log
// files' verdicts.
func (p *Postgres) RecordDigest(ctx context.Context, r DigestRecord, files []cloudtrail.DigestLogFile, sweep *Sweep) (DigestFiles, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", classify(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	c := r.Chain
	var start, chainStart any
	if !r.Start.IsZero() {
		start = r.Start
	}
	if !r.ChainStart.IsZero() {
		chainStart = r.ChainStart
	}
	if _, err := tx.Exec(ctx, upsertDigest, r.Bucket, r.Key, c.OrgID, c.AccountID, c.Region, c.Trail, c.HomeRegion,
		c.Backfill, start, r.End, r.Valid, r.Reason, r.GapBefore, chainStart, r.HashValue, r.Signature, r.LogFiles); err != nil {
		return nil, fmt.Errorf("postgres: record digest: %w", classify(err))
	}
	out := DigestFiles{}
	if !r.Valid {
		if _, err := tx.Exec(ctx, digestAlert, r.Bucket, r.Key, r.Reason, r.End, c.AccountID, c.Region); err != nil {
			return nil, fmt.Errorf("postgres: digest alert: %w", classify(err))
		}
	}
	if r.Valid {
		if _, err := tx.Exec(ctx, stalePending, c.AccountID, c.Region); err != nil {
			return nil, fmt.Errorf("postgres: pending digest files: %w", classify(err))
		}
	}
	if r.Valid && len(files) > 0 {
		buckets, keys, hashes := make([]string, len(files)), make([]string, len(files)), make([]string, len(files))
		for i, f := range files {
			buckets[i], keys[i], hashes[i] = f.S3Bucket, f.S3Object, f.HashValue
		}
		rows, err := tx.Query(ctx, recordFiles, r.Bucket, r.Key, c.AccountID, c.Region, r.End, buckets, keys, hashes)
		if err != nil {
			return nil, fmt.Errorf("postgres: record digest files: %w", classify(err))
		}
		var verdict string
		var n int
		_, err = pgx.ForEachRow(rows, []any{&verdict, &n}, func() error { out[verdict] += n; return nil })
		if err != nil {
			return nil, fmt.Errorf("postgres: record digest files: %w", classify(err))
		}
	}
	if r.Valid && sweep != nil && len(sweep.Prefixes) > 0 && !sweep.To.Before(sweep.From) {
		var n int
		if err := tx.QueryRow(ctx, sweepFiles, sweep.Bucket, sweep.Prefixes, r.Bucket, r.Key, c.AccountID, c.Region,
			sweep.From, sweep.To).Scan(&n); err != nil {
			return nil, fmt.Errorf("postgres: sweep unlisted files: %w", classify(err))
		}
		out[FileNotListed] += n
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", classify(err))
	}
	return out, nil
}
