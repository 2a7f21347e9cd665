package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/migrations"
)

// StatusRejectLimit bounds the rows of cloudtrail_rejects that ReadStatus
// counts: Status.Rejects above it means "more than StatusRejectLimit".
const StatusRejectLimit = 100000

// Status is what the database says about ingestion, for an on-call
// engineer's glance (pgtrail status).
type Status struct {
	URL    string // DATABASE_URL, redacted
	Schema int    // the applied migration version; 0 when not migrated
	Binary int    // the latest migration this binary embeds
	// Hour and Day sum the ledger over the last hour and the last day.
	Hour, Day IngestWindow
	// Last is the latest processed object; nil when there is none.
	Last *LastObject
	// Rejects counts cloudtrail_rejects up to StatusRejectLimit+1;
	// LastRejectAt is when the latest one was recorded.
	Rejects      int64
	LastRejectAt time.Time
	Partitions   PartitionSummary
	// Locks compares the lock table with the partitions (locks.go).
	Locks LockBudget
	// Alerts is nil before migration 9 (status_alerts.go).
	Alerts *AlertStatus
	// Integrity is nil before migration 11 (status_integrity.go).
	Integrity *IntegrityStatus
	// Lookup is nil before migration 15 (status_lookup.go).
	Lookup *LookupSummaryStatus
}

// IngestWindow sums the ledger over a period.
type IngestWindow struct {
	Objects, Events, Inserted, Duplicates, Rejected int64
}

// LastObject is one ledger row.
type LastObject struct {
	Bucket, Key                           string
	ProcessedAt                           time.Time
	Events, Inserted, Duplicates, Rejects int64
}

// PartitionSummary describes the day partitions of cloudtrail_events from
// the catalog.
type PartitionSummary struct {
	Count            int64
	Oldest, Newest   string // partition names
	Bytes, RowsGuess int64
}

// ReadStatus reads the ledger, the rejects and the partitions over one
// read-only connection of its own, named "pgtrail status", each statement
// and the connection bounded by timeout. Every query uses an index or the
// catalog: the events table itself is never scanned. On error the Status
// holds what was read before it (URL and Binary at least), and the error
// carries no password.
func ReadStatus(ctx context.Context, dsn string, timeout time.Duration) (Status, error) {
	st := Status{URL: Redact(dsn)}
	if all, err := migrations.All(); err == nil && len(all) > 0 {
		st.Binary = all[len(all)-1].Version
	}
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	conn, err := connectReadOnly(ctx, dsn, "pgtrail status", timeout)
	if err != nil {
		return st, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := st.query(ctx, conn); err != nil {
		return st, scrub(err, dsn)
	}
	return st, nil
}

// query runs the status queries on conn.
func (st *Status) query(ctx context.Context, conn *pgx.Conn) error {
	var migrated bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('pgtrail_schema_migrations') IS NOT NULL`).Scan(&migrated); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if !migrated {
		return nil // Schema stays 0.
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM pgtrail_schema_migrations`).Scan(&st.Schema); err != nil {
		return fmt.Errorf("postgres: schema version: %w", err)
	}
	if st.Schema == 0 {
		return nil
	}

	// The processed_at index bounds this to the last day's objects.
	err := conn.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE processed_at > now() - interval '1 hour'),
       coalesce(sum(events)     FILTER (WHERE processed_at > now() - interval '1 hour'), 0),
       coalesce(sum(inserted)   FILTER (WHERE processed_at > now() - interval '1 hour'), 0),
       coalesce(sum(duplicates) FILTER (WHERE processed_at > now() - interval '1 hour'), 0),
       coalesce(sum(rejected)   FILTER (WHERE processed_at > now() - interval '1 hour'), 0),
       count(*), coalesce(sum(events), 0), coalesce(sum(inserted), 0),
       coalesce(sum(duplicates), 0), coalesce(sum(rejected), 0)
FROM cloudtrail_objects
WHERE processed_at > now() - interval '1 day'`).Scan(
		&st.Hour.Objects, &st.Hour.Events, &st.Hour.Inserted, &st.Hour.Duplicates, &st.Hour.Rejected,
		&st.Day.Objects, &st.Day.Events, &st.Day.Inserted, &st.Day.Duplicates, &st.Day.Rejected)
	if err != nil {
		return fmt.Errorf("postgres: ingested: %w", err)
	}

	var last LastObject
	err = conn.QueryRow(ctx, `
SELECT s3_bucket, s3_key, processed_at, events, inserted, duplicates, rejected
FROM cloudtrail_objects ORDER BY processed_at DESC LIMIT 1`).Scan(
		&last.Bucket, &last.Key, &last.ProcessedAt, &last.Events, &last.Inserted, &last.Duplicates, &last.Rejects)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("postgres: last object: %w", err)
	default:
		st.Last = &last
	}

	// Rejects are rare by design; the count stops early if they are not.
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM cloudtrail_rejects LIMIT $1) r`, StatusRejectLimit+1).Scan(&st.Rejects)
	if err != nil {
		return fmt.Errorf("postgres: rejects: %w", err)
	}
	if st.Rejects > 0 {
		err = conn.QueryRow(ctx, `SELECT rejected_at FROM cloudtrail_rejects ORDER BY id DESC LIMIT 1`).Scan(&st.LastRejectAt)
		if err != nil {
			return fmt.Errorf("postgres: latest reject: %w", err)
		}
	}

	err = conn.QueryRow(ctx, `
SELECT count(*), coalesce(min(c.relname), ''), coalesce(max(c.relname), ''),
       coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint,
       coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'cloudtrail_events'::regclass`).Scan(
		&st.Partitions.Count, &st.Partitions.Oldest, &st.Partitions.Newest, &st.Partitions.Bytes, &st.Partitions.RowsGuess)
	if err != nil {
		return fmt.Errorf("postgres: partitions: %w", err)
	}
	if st.Locks, err = readLockBudget(ctx, conn); err != nil {
		return err
	}
	if err := st.queryAlerts(ctx, conn); err != nil {
		return err
	}
	if err := st.queryIntegrity(ctx, conn); err != nil {
		return err
	}
	return st.queryLookupSummaries(ctx, conn)
}

// connectReadOnly opens a read-only session of its own for a command that
// only reads (status, dlq), named app in pg_stat_activity, each statement
// bounded by timeout. Its errors name DATABASE_URL's parts without the
// password.
func connectReadOnly(ctx context.Context, dsn, app string, timeout time.Duration) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, scrub(fmt.Errorf("postgres: parse DATABASE_URL: %w", err), dsn)
	}
	cc.ConnectTimeout = timeout
	cc.RuntimeParams["application_name"] = app
	cc.RuntimeParams["default_transaction_read_only"] = "on"
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, scrub(fmt.Errorf("postgres: connect: %w", err), dsn)
	}
	return conn, nil
}
