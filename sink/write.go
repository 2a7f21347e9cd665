package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/worker"
)

// stagingDDL creates, once per connection, the temporary table that COPY
// fills. Events and rejects share it; obj is the object's index in the
// batch, rec the record's in its object, and dup marks an event that
// insertEach found stored (refuse.go).
//
// The JSON columns are text here, cast as the events are inserted: a value
// that jsonb refuses fails the insert, not the COPY, and the staged rows are
// still there to find it among (refuse.go), which a stream once read is not.
//
// Its rows are not compressed below 8 kB (toast_tuple_target): INSERT …
// SELECT would carry a text value compressed here into cloudtrail_events as
// it is, with the session's default method (pglz) instead of the column's
// lz4, and compressing what is thrown away at commit is wasted work.
const stagingDDL = `CREATE TEMP TABLE IF NOT EXISTS pgtrail_staging (
    obj integer, rec integer, reason text, raw text,
    event_id text, event_time timestamptz, event_version text, event_source text,
    event_name text, event_type text, event_category text, aws_region text,
    source_ip_address text, user_agent text, user_identity_type text,
    user_identity_arn text, user_identity_account_id text,
    user_identity_principal_id text, user_identity_access_key_id text,
    user_identity_user_name text, session_issuer_arn text,
    session_mfa_authenticated boolean, invoked_by text, error_code text,
    error_message text, request_id text, read_only boolean,
    management_event boolean, recipient_account_id text, shared_event_id text,
    vpc_endpoint_id text, request_parameters text, response_elements text,
    additional_event_data text, resources text, record text,
    s3_bucket text, s3_key text, dup boolean NOT NULL DEFAULT false
) WITH (toast_tuple_target = 8160) ON COMMIT DELETE ROWS`

// eventColumns are cloudtrail_events' columns that the writer fills, in the
// order Values produces them after the four staging-only columns.
const eventColumns = `event_id, event_time, event_version, event_source,
    event_name, event_type, event_category, aws_region, source_ip_address,
    user_agent, user_identity_type, user_identity_arn, user_identity_account_id,
    user_identity_principal_id, user_identity_access_key_id,
    user_identity_user_name, session_issuer_arn, session_mfa_authenticated,
    invoked_by, error_code, error_message, request_id, read_only,
    management_event, recipient_account_id, shared_event_id, vpc_endpoint_id,
    request_parameters, response_elements, additional_event_data, resources,
    record, s3_bucket, s3_key`

var stagingColumns = []string{
	"obj", "rec", "reason", "raw",
	"event_id", "event_time", "event_version", "event_source",
	"event_name", "event_type", "event_category", "aws_region", "source_ip_address",
	"user_agent", "user_identity_type", "user_identity_arn", "user_identity_account_id",
	"user_identity_principal_id", "user_identity_access_key_id",
	"user_identity_user_name", "session_issuer_arn", "session_mfa_authenticated",
	"invoked_by", "error_code", "error_message", "request_id", "read_only",
	"management_event", "recipient_account_id", "shared_event_id", "vpc_endpoint_id",
	"request_parameters", "response_elements", "additional_event_data", "resources",
	"record", "s3_bucket", "s3_key",
}

// insertOrder is the order every write inserts events in, the COPY of a
// batch (sorted the same way in Go: time to the microsecond, then the ID's
// bytes) as the staging path: two transactions that insert some of the
// same events then never wait on each other in a cycle.
const insertOrder = `event_time, event_id COLLATE "C"`

// insertEvents moves the staged events into cloudtrail_events and counts
// what each object inserted. %s is the select list, which casts the JSON
// columns (newStagedSQL).
const insertEvents = `WITH ins AS (
    INSERT INTO cloudtrail_events (` + eventColumns + `)
    SELECT %s FROM pgtrail_staging WHERE reason IS NULL
    ORDER BY ` + insertOrder + `
    ON CONFLICT DO NOTHING
    RETURNING s3_bucket, s3_key
) SELECT s3_bucket, s3_key, count(*) FROM ins GROUP BY 1, 2`

const insertRejects = `INSERT INTO cloudtrail_rejects (s3_bucket, s3_key, record_index, reason, raw)
    SELECT s3_bucket, s3_key, rec, reason, raw FROM pgtrail_staging WHERE reason IS NOT NULL
    ON CONFLICT DO NOTHING`

const upsertLedger = `INSERT INTO cloudtrail_objects
    (s3_bucket, s3_key, size, events, inserted, duplicates, rejected, message_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''))
    ON CONFLICT (s3_bucket, s3_key) DO UPDATE SET
        deliveries = cloudtrail_objects.deliveries + 1,
        inserted = cloudtrail_objects.inserted + EXCLUDED.inserted,
        duplicates = EXCLUDED.duplicates,
        processed_at = now()`

// Write stores every row of objs, and one ledger row per object, in one
// transaction. An event that PostgreSQL would refuse (check.go), or refuses
// (refuse.go), for its values is stored as a reject in its place, with the
// reason. An error is marked worker.Permanent if retrying cannot help
// (errors.go); a decode error from a RowSource is returned as it is.
// Objects decoded ahead take the buffered path (batch.go); others stream
// through the staging table.
func (p *Postgres) Write(ctx context.Context, objs []*worker.Object) ([]worker.WriteResult, error) {
	if err := checkObjects(objs); err != nil {
		return nil, err
	}
	if bufs, ok := buffered(objs); ok && len(objs) > 0 {
		return p.writeBuffered(ctx, objs, bufs)
	}
	return p.writeStaged(ctx, objs)
}

// writeStaged COPYs the rows into the staging table and moves them into
// cloudtrail_events with INSERT … ON CONFLICT DO NOTHING.
func (p *Postgres) writeStaged(ctx context.Context, objs []*worker.Object) ([]worker.WriteResult, error) {
	res := make([]worker.WriteResult, len(objs))
	if len(objs) == 0 {
		return res, nil
	}
	jsonb, err := p.recordJSONB(ctx)
	if err != nil {
		return nil, err
	}
	stmts := stagedFor(jsonb)
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", classify(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit

	src := &copySource{objs: objs, res: res, days: map[int64]bool{}, matcher: p.matcher}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pgtrail_staging"}, stagingColumns, src); err != nil {
		if src.err != nil {
			return nil, src.err // the object's own error: decode, fetch
		}
		return nil, fmt.Errorf("postgres: copy: %w", classify(err))
	}
	if err := p.ensurePartitions(ctx, src.days); err != nil {
		return nil, err
	}

	// The savepoint keeps the staged rows if PostgreSQL refuses the insert.
	if _, err := tx.Exec(ctx, `SAVEPOINT pgtrail_insert`); err != nil {
		return nil, fmt.Errorf("postgres: savepoint: %w", classify(err))
	}
	rejects := src.rejects
	alerts, err := alertsJSON(src.alerts)
	if err != nil {
		return nil, err
	}
	err = p.insertStaged(ctx, tx, stmts.insert, objs, res, alerts)
	if refused(err) {
		var n int
		n, err = p.insertRefusing(ctx, tx, stmts, objs, res, alerts)
		rejects += n
	}
	if err != nil {
		return nil, classify(err)
	}
	if rejects > 0 {
		if _, err := tx.Exec(ctx, insertRejects); err != nil {
			return nil, fmt.Errorf("postgres: insert rejects: %w", classify(err))
		}
	}

	batch := &pgx.Batch{}
	for i, o := range objs {
		r := &res[i]
		r.Duplicates = r.Events - r.Inserted
		batch.Queue(upsertLedger, o.Bucket, o.Key, o.Size, r.Events, r.Inserted, r.Duplicates, r.Rejected, o.MessageID)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("postgres: ledger: %w", classify(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", classify(err))
	}
	return res, nil
}

// insertStaged runs insert (insertEvents) and sets each object's Inserted
// in res; with alerts (alertsJSON), it stores those whose events it
// inserted in the same statement. Its error is not classified.
func (p *Postgres) insertStaged(ctx context.Context, tx pgx.Tx, insert string, objs []*worker.Object, res []worker.WriteResult, alerts []byte) error {
	byKey := make(map[[2]string]int, len(objs))
	for i, o := range objs {
		byKey[[2]string{o.Bucket, o.Key}] = i
		res[i].Inserted = 0
	}
	var args []any
	if alerts != nil {
		insert, args = insertingAlerts(insert), []any{alerts}
	}
	rows, err := tx.Query(ctx, insert, args...)
	if err != nil {
		return fmt.Errorf("postgres: insert events: %w", p.missingPartition(err))
	}
	defer rows.Close()
	for rows.Next() {
		var bucket, key string
		var n int
		if err := rows.Scan(&bucket, &key, &n); err != nil {
			return fmt.Errorf("postgres: insert events: %w", p.missingPartition(err))
		}
		if i, ok := byKey[[2]string{bucket, key}]; ok {
			res[i].Inserted += n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: insert events: %w", p.missingPartition(err))
	}
	return nil
}

// ensurePartitions creates the partitions for days that are not known to
// exist. It runs on its own connection and commits at once, so that other
// writers never wait on this transaction for a partition.
func (p *Postgres) ensurePartitions(ctx context.Context, days map[int64]bool) error {
	var missing []int64
	p.mu.Lock()
	for d := range days {
		if !p.days[d] {
			missing = append(missing, d)
		}
	}
	p.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	for _, d := range missing {
		day := time.Unix(d*86400, 0).UTC()
		var created bool
		if err := p.pool.QueryRow(ctx, `SELECT pgtrail_ensure_partition(date '1970-01-01' + $1::integer)`, d).Scan(&created); err != nil {
			return fmt.Errorf("postgres: partition for %s: %w", day.Format(time.DateOnly), classify(err))
		}
		if created {
			p.log.Info("partition created", zapDay(day))
		}
		p.mu.Lock()
		p.days[d] = true
		p.mu.Unlock()
	}
	return nil
}

// ForgetPartitions drops the cache of partitions known to exist, after
// retention dropped some.
func (p *Postgres) ForgetPartitions() {
	p.mu.Lock()
	p.days = map[int64]bool{}
	p.mu.Unlock()
}

// copySource feeds COPY from the objects' row sources, one object after
// another, counting as it goes. An event that checkEvent refuses is staged
// as a reject.
type copySource struct {
	objs    []*worker.Object
	res     []worker.WriteResult
	days    map[int64]bool
	i       int
	next    int // the index in objs[i] of the row after row
	row     worker.Row
	vals    []any
	rejects int
	err     error
	// matcher, when set, collects in alerts those of each event.
	matcher Matcher
	alerts  []newAlert
}

func (s *copySource) Next() bool {
	for s.i < len(s.objs) {
		s.row = worker.Row{}
		err := s.objs[s.i].Rows.Next(&s.row)
		if errors.Is(err, io.EOF) {
			s.i++
			s.next = 0
			continue
		}
		if err != nil {
			s.err = err
			return false
		}
		s.next++
		if s.row.Reject == nil {
			if why := checkEvent(&s.row.Event); why != "" {
				s.row.Reject = refusal(&s.row.Event, s.next-1, why)
			}
		}
		if s.row.Reject != nil {
			s.res[s.i].Rejected++
			s.rejects++
		} else {
			s.res[s.i].Events++
			s.days[unixDay(s.row.Event.EventTime)] = true
			if s.matcher != nil {
				s.alerts = appendAlerts(s.alerts, s.matcher, factsOf(&s.row.Event))
			}
		}
		return true
	}
	return false
}

func (s *copySource) Err() error { return s.err }

func (s *copySource) Values() ([]any, error) {
	if r := s.row.Reject; r != nil {
		s.vals = append(s.vals[:0], s.i, r.Index, r.Reason, r.Raw)
		for range len(stagingColumns) - 6 {
			s.vals = append(s.vals, nil)
		}
		s.vals = append(s.vals, r.S3Bucket, r.S3Key)
		return s.vals, nil
	}
	e := &s.row.Event
	s.vals = append(s.vals[:0], s.i, s.next-1, nil, nil,
		e.EventID, e.EventTime, str(e.EventVersion), str(e.EventSource),
		str(e.EventName), str(e.EventType), str(e.EventCategory), str(e.AWSRegion), str(e.SourceIPAddress),
		str(e.UserAgent), str(e.UserIdentityType), str(e.UserIdentityARN), str(e.UserIdentityAccountID),
		str(e.UserIdentityPrincipalID), str(e.UserIdentityAccessKeyID),
		str(e.UserIdentityUserName), str(e.SessionIssuerARN), e.SessionMFAAuthenticated,
		str(e.InvokedBy), str(e.ErrorCode), str(e.ErrorMessage), str(e.RequestID), e.ReadOnly,
		e.ManagementEvent, str(e.RecipientAccountID), str(e.SharedEventID), str(e.VPCEndpointID),
		raw(e.RequestParameters), raw(e.ResponseElements), raw(e.AdditionalEventData), raw(e.Resources),
		[]byte(e.Record), e.S3Bucket, e.S3Key)
	return s.vals, nil
}

// str writes "" as NULL.
func str(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// raw writes absent JSON as NULL.
func raw(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
