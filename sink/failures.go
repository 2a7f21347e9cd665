package sink

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxFailureText caps the error text stored for one object.
const maxFailureText = 4096

// RecordFailure stores err as the last failure of the object bucket/key,
// named by the message messageID, in cloudtrail_failures (migration 10):
// the reason a message went to the dead-letter queue then outlives the
// worker's log, and pgtrail dlq list shows it. permanent says that retrying
// cannot help. A database without the table (not yet migrated) is not an
// error: the failure is then only logged, as before.
func (p *Postgres) RecordFailure(ctx context.Context, bucket, key, messageID string, err error, permanent bool) error {
	text := err.Error()
	if len(text) > maxFailureText {
		text = text[:maxFailureText]
	}
	_, qerr := p.pool.Exec(ctx, `
		INSERT INTO cloudtrail_failures AS f (s3_bucket, s3_key, message_id, error, permanent)
		VALUES ($1, $2, nullif($3, ''), $4, $5)
		ON CONFLICT (s3_bucket, s3_key) DO UPDATE
		SET message_id = excluded.message_id, error = excluded.error, permanent = excluded.permanent,
		    failures = f.failures + 1, failed_at = excluded.failed_at`,
		bucket, key, messageID, text, permanent)
	if qerr != nil {
		if isUndefinedTable(qerr) {
			return nil
		}
		return fmt.Errorf("postgres: record failure of s3://%s/%s: %w", bucket, key, classify(qerr))
	}
	return nil
}

// ObjectKey names one object.
type ObjectKey struct{ Bucket, Key string }

// Failure is what pgtrail knows of one object named by a dead-letter
// message: its last recorded failure, if any, and whether it was committed.
type Failure struct {
	Error     string // empty when no failure was recorded
	Permanent bool
	Failures  int
	FailedAt  time.Time
	Committed bool // the ledger holds the object: it was stored after all
}

// ReadFailures looks up the objects in cloudtrail_failures and the ledger,
// in a read-only session of its own.
func ReadFailures(ctx context.Context, dsn string, objs []ObjectKey, timeout time.Duration) (map[ObjectKey]Failure, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	conn, err := connectReadOnly(ctx, dsn, "pgtrail dlq", timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	buckets := make([]string, len(objs))
	keys := make([]string, len(objs))
	for i, o := range objs {
		buckets[i], keys[i] = o.Bucket, o.Key
	}
	var haveTable bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('cloudtrail_failures') IS NOT NULL`).Scan(&haveTable); err != nil {
		return nil, scrub(fmt.Errorf("postgres: %w", err), dsn)
	}
	// The subqueries are not correlated to the unnest, which Citus cannot
	// plan (docs/scaling.md): each finds the rows of the keys asked.
	failures := `SELECT NULL::text AS s3_bucket, NULL::text AS s3_key, NULL::text AS error, false AS permanent,
			0 AS failures, NULL::timestamptz AS failed_at WHERE false`
	if haveTable {
		failures = `SELECT s3_bucket, s3_key, error, permanent, failures, failed_at FROM cloudtrail_failures
			WHERE s3_key = ANY($2)`
	}
	rows, err := conn.Query(ctx, `
		SELECT o.bucket, o.key, f.error, coalesce(f.permanent, false), coalesce(f.failures, 0), f.failed_at,
		       l.s3_key IS NOT NULL
		FROM unnest($1::text[], $2::text[]) AS o(bucket, key)
		LEFT JOIN (`+failures+`) f ON f.s3_bucket = o.bucket AND f.s3_key = o.key
		LEFT JOIN (SELECT s3_bucket, s3_key FROM cloudtrail_objects WHERE s3_key = ANY($2)) l
		       ON l.s3_bucket = o.bucket AND l.s3_key = o.key`, buckets, keys)
	if err != nil {
		return nil, scrub(fmt.Errorf("postgres: read failures: %w", err), dsn)
	}
	out := make(map[ObjectKey]Failure, len(objs))
	for rows.Next() {
		var (
			k   ObjectKey
			f   Failure
			msg *string
			at  *time.Time
		)
		if err := rows.Scan(&k.Bucket, &k.Key, &msg, &f.Permanent, &f.Failures, &at, &f.Committed); err != nil {
			return nil, scrub(fmt.Errorf("postgres: read failures: %w", err), dsn)
		}
		if msg != nil {
			f.Error = *msg
		}
		if at != nil {
			f.FailedAt = *at
		}
		out[k] = f
	}
	if err := rows.Err(); err != nil {
		return nil, scrub(fmt.Errorf("postgres: read failures: %w", err), dsn)
	}
	return out, nil
}

// isUndefinedTable tells whether err is PostgreSQL's undefined_table.
func isUndefinedTable(err error) bool {
	var se interface{ SQLState() string }
	return errors.As(err, &se) && se.SQLState() == "42P01"
}
