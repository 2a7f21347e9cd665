package sink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// The buffered path. The objects of WriteBuffered were decoded whole: the
// entries are all in memory and the writer can do better than the staging
// table:
//
//  1. It drops the batch's own duplicates (the same event in two objects)
//     and creates the partitions its days need, before the transaction.
//  2. Unless the previous batches went through without a duplicate, it asks
//     which of the batch's keys are stored already (one index probe per
//     key, first of a sample: see probeSample) and leaves those out.
//  3. It COPYs the rest straight into cloudtrail_events, in binary.
//
// The primary key stays the judge: if another writer stored one of the
// events meanwhile, or a skipped probe let a duplicate through, COPY fails
// with a unique violation and the batch is written again through the
// staging table with ON CONFLICT DO NOTHING. Counts per object are exact in
// every case: an event is inserted by the object that brought it first.
// If PostgreSQL refuses a value, the batch goes through the staging table
// too, which finds the events to blame (refuse.go).

// probeEvents returns the stored events whose ID is one of $1 and whose
// time lies between $2 and $3, the earliest and the latest of the keys
// asked: a superset of them, which stored narrows to the pairs asked. It
// has no subquery, and no set-returning function, which Citus cannot
// correlate: Citus sends it to the shards of the IDs, and each prunes to
// the partitions of the batch's span. (The correlated EXISTS over unnest
// that it replaces was as fast, and BenchmarkProbe compares both forms.)
const probeEvents = `SELECT event_id, event_time FROM cloudtrail_events
    WHERE event_id = ANY($1) AND event_time BETWEEN $2 AND $3`

const insertReject = `INSERT INTO cloudtrail_rejects (s3_bucket, s3_key, record_index, reason, raw)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`

// probeAfter is how many batches in a row must find no stored duplicate
// before the writer stops probing and COPYs optimistically.
const probeAfter = 4

// eventKey is the primary key of cloudtrail_events, at the database's
// microsecond precision.
type eventKey struct {
	id string
	us int64
}

// errConflict is a COPY that met a stored event; errRefused, one that
// PostgreSQL refused for a value in it.
var (
	errConflict = errors.New("unique violation")
	errRefused  = errors.New("refused value")
)

// writeBuffered is WriteBuffered; objs[i] is &bufs[i].Object.
func (p *Postgres) writeBuffered(ctx context.Context, objs []*Object, bufs []*BufferedObject) ([]WriteResult, error) {
	res := make([]WriteResult, len(objs))
	n := 0
	for _, b := range bufs {
		n += len(b.Entries)
	}
	evs := make([]*cloudtrail.Event, 0, n)
	owner := make([]int32, 0, n)
	var rejects []*cloudtrail.Reject
	seen := make(map[eventKey]struct{}, n)
	days := map[int64]bool{}
	for i, b := range bufs {
		for j := range b.Entries {
			row := &b.Entries[j]
			reject := row.Reject
			if reject == nil {
				if why := checkEvent(&row.Event); why != "" {
					reject = refusal(&row.Event, j, why)
				}
			}
			if reject != nil {
				res[i].Rejected++
				rejects = append(rejects, reject)
				continue
			}
			res[i].Events++
			e := &row.Event
			k := eventKey{e.EventID, e.EventTime.UnixMicro()}
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			days[unixDay(e.EventTime)] = true
			evs = append(evs, e)
			owner = append(owner, int32(i))
		}
	}
	if err := p.ensurePartitions(ctx, days); err != nil {
		return nil, err
	}
	hits := p.matchAll(evs)
	jsonb, err := p.recordJSONB(ctx)
	if err != nil {
		return nil, err
	}

	probe := probeSample
	if p.clean.Load() >= probeAfter {
		probe = probeNone
	}
	err = p.copyBatch(ctx, objs, res, evs, owner, rejects, probe, jsonb, hits)
	if errors.Is(err, errConflict) {
		p.clean.Store(0)
		err = p.copyBatch(ctx, objs, res, evs, owner, rejects, probeAll, jsonb, hits)
	}
	if errors.Is(err, errConflict) || errors.Is(err, errRefused) {
		// Another writer got there first, or PostgreSQL refused a value:
		// the staging path sorts either out.
		srcs := make([]EntrySource, len(bufs))
		for i, b := range bufs {
			srcs[i] = &entrySlice{entries: b.Entries}
		}
		return p.writeStaged(ctx, objs, srcs)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// How copyBatch looks for stored events before its COPY.
const (
	// probeNone COPYs at once.
	probeNone = iota
	// probeSample probes each object's first and last event, and all the
	// events of an object where either is stored. Duplicates come by
	// whole objects (a redelivery, a second trail's file of the same five
	// minutes), so this finds them at a fraction of the cost.
	probeSample
	// probeAll probes every event.
	probeAll
)

// copyBatch is one transaction of the buffered path. It fills res's
// Inserted and Duplicates, and stores the alerts (hits) of the events it
// inserted.
func (p *Postgres) copyBatch(ctx context.Context, objs []*Object, res []WriteResult,
	evs []*cloudtrail.Event, owner []int32, rejects []*cloudtrail.Reject, probe int, jsonb bool, hits map[*cloudtrail.Event][]newAlert,
) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", classify(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit

	for i := range res {
		res[i].Inserted = 0
	}
	if probe != probeNone && len(evs) > 0 {
		check := make([]int, 0, len(evs))
		if probe == probeSample {
			// Each object's first and last event.
			for i := range evs {
				if i == 0 || i == len(evs)-1 || owner[i] != owner[i-1] || owner[i] != owner[i+1] {
					check = append(check, i)
				}
			}
			stored, err := p.stored(ctx, tx, evs, check)
			if err != nil {
				return err
			}
			hit := map[int32]bool{}
			for i := range stored {
				hit[owner[i]] = true
			}
			check = check[:0]
			for i := range evs {
				if hit[owner[i]] {
					check = append(check, i)
				}
			}
		} else {
			for i := range evs {
				check = append(check, i)
			}
		}
		var stored map[int]bool
		if len(check) > 0 {
			if stored, err = p.stored(ctx, tx, evs, check); err != nil {
				return err
			}
		}
		if len(stored) == 0 {
			p.clean.Add(1)
		} else {
			p.clean.Store(0)
			kept, keptOwner := evs[:0:0], owner[:0:0]
			for i, e := range evs {
				if !stored[i] {
					kept = append(kept, e)
					keptOwner = append(keptOwner, owner[i])
				}
			}
			evs, owner = kept, keptOwner
		}
	}
	if len(evs) > 0 {
		// Every writer inserts in the same order (insertOrder): two
		// batches that carry the same events (a second trail's copy of a
		// file) then wait on each other one way only, never in a cycle,
		// which PostgreSQL would break as a deadlock. Time order also keeps
		// the BRIN index on event_time tight.
		sorted := slices.Clone(evs)
		slices.SortFunc(sorted, func(a, b *cloudtrail.Event) int {
			if c := cmp.Compare(a.EventTime.UnixMicro(), b.EventTime.UnixMicro()); c != 0 {
				return c
			}
			return strings.Compare(a.EventID, b.EventID)
		})
		r := &eventReader{evs: sorted, jsonb: jsonb}
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, r, CopyEventsSQL); err != nil {
			if uniqueViolation(err) {
				return errConflict
			}
			if refused(err) {
				return errRefused
			}
			return fmt.Errorf("postgres: copy: %w", p.missingPartition(classify(err)))
		}
	}
	for _, o := range owner {
		res[o].Inserted++
	}
	act := hourCounts{}
	for _, e := range evs {
		act.add(e.EventTime, e.ErrorCode != "")
	}

	batch := &pgx.Batch{}
	// The COPY inserted every event of evs, or failed: their alerts are
	// the batch's.
	if alerts, err := alertsOf(evs, hits); err != nil {
		return err
	} else if alerts != nil {
		batch.Queue(insertAlerts, alerts)
	}
	for _, r := range rejects {
		batch.Queue(insertReject, r.S3Bucket, r.S3Key, r.Index, r.Reason, r.Raw)
	}
	if err := p.queueLedger(ctx, batch, objs, res, act); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("postgres: ledger: %w", classify(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", classify(err))
	}
	return nil
}

// stored returns which of evs[i], for i in check, are in
// cloudtrail_events already.
func (p *Postgres) stored(ctx context.Context, tx pgx.Tx, evs []*cloudtrail.Event, check []int) (map[int]bool, error) {
	ids := make([]string, len(check))
	asked := make(map[eventKey][]int, len(check))
	var lo, hi time.Time
	for k, i := range check {
		e := evs[i]
		ids[k] = e.EventID
		// At the database's microsecond precision, as COPY stores it.
		t := e.EventTime.Truncate(time.Microsecond)
		if k == 0 || t.Before(lo) {
			lo = t
		}
		if k == 0 || t.After(hi) {
			hi = t
		}
		key := eventKey{e.EventID, t.UnixMicro()}
		asked[key] = append(asked[key], i)
	}
	rows, err := tx.Query(ctx, probeEvents, ids, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("postgres: probe: %w", classify(err))
	}
	defer rows.Close()
	stored := map[int]bool{}
	for rows.Next() {
		var id string
		var t time.Time
		if err := rows.Scan(&id, &t); err != nil {
			return nil, fmt.Errorf("postgres: probe: %w", classify(err))
		}
		for _, i := range asked[eventKey{id, t.UnixMicro()}] {
			stored[i] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: probe: %w", classify(err))
	}
	return stored, nil
}
