package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// stagingDDL creates, once per connection, the temporary table that COPY
// fills: cloudtrail.Columns and four columns of its own. Events and rejects share it; obj is the object's index in the
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
var stagingDDL = func() string {
	cols := []string{"obj integer", "rec integer", "reason text", "raw text"}
	for _, c := range cloudtrail.Columns {
		typ := c.Type
		if typ == "jsonb" {
			typ = "text"
		}
		cols = append(cols, c.Name+" "+typ)
	}
	cols = append(cols, "dup boolean NOT NULL DEFAULT false")
	return "CREATE TEMP TABLE IF NOT EXISTS pgtrail_staging (\n    " + strings.Join(cols, ",\n    ") +
		"\n) WITH (toast_tuple_target = 8160) ON COMMIT DELETE ROWS"
}()

// eventColumns are cloudtrail_events' columns that the writer fills
// (cloudtrail.Columns), in the order Values produces them after the four
// staging-only columns, as a column list.
var eventColumns = strings.Join(eventColumnNames(), ", ")

// stagingColumns are the staging table's columns that COPY fills.
var stagingColumns = append([]string{"obj", "rec", "reason", "raw"}, eventColumnNames()...)

func eventColumnNames() []string {
	names := make([]string, len(cloudtrail.Columns))
	for i, c := range cloudtrail.Columns {
		names[i] = c.Name
	}
	return names
}

// insertOrder is the order every write inserts events in, the COPY of a
// batch (sorted the same way in Go: time to the microsecond, then the ID's
// bytes) as the staging path: two transactions that insert some of the
// same events then never wait on each other in a cycle.
const insertOrder = `event_time, event_id COLLATE "C"`

// stagedOrder is insertOrder for the staged rows: of two staged copies of
// one event, the first staged is the one inserted, whose alerts are stored
// (alerts.go).
const stagedOrder = insertOrder + `, obj, rec`

// insertEvents moves the staged events into cloudtrail_events and counts
// what each object inserted, by hour, with the failed calls among them. The first %s is eventColumns, the second the
// select list, which casts the JSON columns (newStagedSQL).
const insertEvents = `WITH ins AS (
    INSERT INTO cloudtrail_events (%s)
    SELECT %s FROM pgtrail_staging WHERE reason IS NULL
    ORDER BY ` + stagedOrder + `
    ON CONFLICT DO NOTHING
    RETURNING s3_bucket, s3_key, event_time, error_code
) SELECT s3_bucket, s3_key, ` + eventHour + `, count(*), count(error_code)
FROM ins GROUP BY 1, 2, 3`

const insertRejects = `INSERT INTO cloudtrail_rejects (s3_bucket, s3_key, record_index, reason, raw)
    SELECT s3_bucket, s3_key, rec, reason, raw FROM pgtrail_staging WHERE reason IS NOT NULL
    ON CONFLICT DO NOTHING`

const upsertLedger = `INSERT INTO cloudtrail_objects
    (s3_bucket, s3_key, size, events, inserted, duplicates, rejected, message_id, content_sha256, trailing_data)
    VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), $9, $10)
    ON CONFLICT (s3_bucket, s3_key) DO UPDATE SET
        deliveries = cloudtrail_objects.deliveries + 1,
        inserted = cloudtrail_objects.inserted + EXCLUDED.inserted,
        duplicates = EXCLUDED.duplicates,
        content_sha256 = coalesce(cloudtrail_objects.content_sha256, EXCLUDED.content_sha256),
        trailing_data = cloudtrail_objects.trailing_data OR EXCLUDED.trailing_data,
        processed_at = EXCLUDED.processed_at`

// upsertLedgerUnhashed is upsertLedger for a database not yet migrated to
// 0011, whose ledger has no hash columns: a worker upgraded before its
// database keeps writing.
const upsertLedgerUnhashed = `INSERT INTO cloudtrail_objects
    (s3_bucket, s3_key, size, events, inserted, duplicates, rejected, message_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''))
    ON CONFLICT (s3_bucket, s3_key) DO UPDATE SET
        deliveries = cloudtrail_objects.deliveries + 1,
        inserted = cloudtrail_objects.inserted + EXCLUDED.inserted,
        duplicates = EXCLUDED.duplicates,
        processed_at = EXCLUDED.processed_at -- the column's default; Citus refuses a function here`

// queueLedger queues the ledger rows of objs, with what res counted, the
// integrity check of those a digest listed before they arrived
// (integrity.go), and the activity of the events inserted (activity.go).
func (p *Postgres) queueLedger(ctx context.Context, batch *pgx.Batch, objs []*Object, res []WriteResult, act hourCounts) error {
	f, err := p.features(ctx)
	if err != nil {
		return err
	}
	hashed := f.hashed
	if f.activity {
		queueActivity(batch, act)
	}
	for i, o := range objs {
		r := &res[i]
		r.Duplicates = r.Events - r.Inserted
		if !hashed {
			batch.Queue(upsertLedgerUnhashed, o.Bucket, o.Key, o.Size, r.Events, r.Inserted, r.Duplicates, r.Rejected, o.MessageID)
			continue
		}
		batch.Queue(upsertLedger, o.Bucket, o.Key, o.Size, r.Events, r.Inserted, r.Duplicates, r.Rejected, o.MessageID,
			o.contentSHA256(), o.Read.Trailing)
	}
	if hashed {
		queueLateFiles(batch, objs)
	}
	return nil
}

// Writing. Both write methods store every entry of their objects, and one
// ledger row per object, in one transaction. An event that PostgreSQL
// would refuse (check.go), or refuses (refuse.go), for its values is stored
// as a reject in its place, with the reason. An error is marked
// retry.Permanent if retrying cannot help (errors.go); an error of a
// StreamedObject's EntrySource (decode, fetch) is returned as it is.

// WriteBuffered stores objects decoded whole, in one transaction: by
// binary COPY straight into cloudtrail_events (batch.go), or through the
// staging table when that meets a duplicate or a refused value.
func (p *Postgres) WriteBuffered(ctx context.Context, objs []*BufferedObject) ([]WriteResult, error) {
	heads := make([]*Object, len(objs))
	for i, o := range objs {
		heads[i] = &o.Object
	}
	if err := checkObjects(heads); err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return []WriteResult{}, nil
	}
	return p.writeBuffered(ctx, heads, objs)
}

// WriteStreamed stores one object whose entries are read once, as they
// are decoded, through the staging table.
func (p *Postgres) WriteStreamed(ctx context.Context, obj *StreamedObject) (WriteResult, error) {
	heads := []*Object{&obj.Object}
	if err := checkObjects(heads); err != nil {
		return WriteResult{}, err
	}
	res, err := p.writeStaged(ctx, heads, []EntrySource{obj.Entries})
	if err != nil {
		return WriteResult{}, err
	}
	return res[0], nil
}

// writeStaged COPYs the entries of objs, read from srcs (one per object),
// into the staging table and moves them into cloudtrail_events with
// INSERT … ON CONFLICT DO NOTHING.
func (p *Postgres) writeStaged(ctx context.Context, objs []*Object, srcs []EntrySource) ([]WriteResult, error) {
	res := make([]WriteResult, len(objs))
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

	src := &copySource{srcs: srcs, res: res, days: map[int64]bool{}, matcher: p.matcher}
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
	act := hourCounts{}
	err = p.insertStaged(ctx, tx, stmts.insert, objs, res, alerts, act)
	if refused(err) {
		var n int
		n, err = p.insertRefusing(ctx, tx, stmts, objs, res, alerts, act)
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
	if err := p.queueLedger(ctx, batch, objs, res, act); err != nil {
		return nil, err
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
// in res, and act to the activity of the events inserted; with alerts
// (alertsJSON), it stores those whose events it inserted in the same
// statement. Its error is not classified.
func (p *Postgres) insertStaged(ctx context.Context, tx pgx.Tx, insert string, objs []*Object, res []WriteResult, alerts []byte, act hourCounts) error {
	byKey := make(map[[2]string]int, len(objs))
	for i, o := range objs {
		byKey[[2]string{o.Bucket, o.Key}] = i
		res[i].Inserted = 0
	}
	clear(act)
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
		var hour time.Time
		var n, failed int64
		if err := rows.Scan(&bucket, &key, &hour, &n, &failed); err != nil {
			return fmt.Errorf("postgres: insert events: %w", p.missingPartition(err))
		}
		if i, ok := byKey[[2]string{bucket, key}]; ok {
			res[i].Inserted += int(n)
		}
		act.addN(hour, n, failed)
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
			p.log.Debug("partition created", zapDay(day))
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

// copySource feeds COPY from the objects' entry sources, one object after
// another, counting as it goes. An event that checkEvent refuses is staged
// as a reject.
type copySource struct {
	srcs    []EntrySource
	res     []WriteResult
	days    map[int64]bool
	i       int
	next    int // the index in srcs[i] of the entry after row
	row     cloudtrail.Entry
	vals    []any
	rejects int
	err     error
	// matcher, when set, collects in alerts those of each event.
	matcher Matcher
	alerts  []newAlert
}

func (s *copySource) Next() bool {
	for s.i < len(s.srcs) {
		s.row = cloudtrail.Entry{}
		err := s.srcs[s.i].Next(&s.row)
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
				n := len(s.alerts)
				s.alerts = appendAlerts(s.alerts, s.matcher, &s.row.Event)
				for k := n; k < len(s.alerts); k++ {
					s.alerts[k].Obj, s.alerts[k].Rec = s.i, s.next-1
				}
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
