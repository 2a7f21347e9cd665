package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A lookup reads its range newest first: the newest hour, then the day
// before it, each by one statement over cloudtrail_events planned for its
// bounds (a busy value's page is there); then partition by partition, each
// whole partition by a statement that names it, planned once per
// connection (a generic plan) and pipelined with its neighbours, and a
// partition the range only cuts by a statement planned for its bounds.
//
// Planning is what a walk through a year cost: some 366 partitions planned
// on every page, 0.5 to 12 ms each on a busy server. A statement that
// names one partition needs no pruning, so its generic plan is as good as
// a custom one, and once made costs nothing more; executing it locks the
// partition and the index it reads, not every partition and index of the
// table as a generic plan on cloudtrail_events would (4,761 locks for a
// year).

// lookupCustomSpans are the spans read first, by statements planned for
// their bounds: a busy value's page is found there, where a whole day
// partition's generic statement would collect and sort a busy value's
// matches of the day.
var lookupCustomSpans = []time.Duration{time.Hour, 24 * time.Hour}

// partitionChunks are how many whole partitions each pipelined batch
// reads, in turn, while the walk has found nothing in whole partitions; the
// last repeats. Once it has, a batch reads as many partitions as should
// fill the page at the rate found so far, half as many again, within the
// first and the last of partitionChunks: every statement of a batch is
// executed and returns up to the page's rest, records and all, so a batch
// much longer than the page needs pays for rows thrown away.
// A batch holds its locks until it ends (its implicit transaction): a
// statement whose plan is made locks its partition and the one or two
// indexes it reads, 2 or 3 locks, but the first run of a statement on a
// connection, or the first after its partition's statistics changed, plans
// it, which locks every index of the partition: 13 locks a partition. 92
// partitions take at most 1,196 locks, as the 92-day windows that bounded
// a lookup's statements before.
var partitionChunks = []int{4, 16, 64, 92}

// lookupStatementCache is the capacity of each reader connection's
// statement cache: the statements of a whole partition are one per
// partition and per shape of lookup (the attribute keys given, Insights or
// not), a year's 366 for each shape walked that far. Each holds its plan
// in the server's session, 48 to 64 kB (pg_backend_memory_contexts,
// CachedPlan*): at most 64 MB a connection, beside the partitions' catalog
// entries the session holds once it planned on them (lookup_warm.go).
const lookupStatementCache = 1024

// errPartitionGone reports that a partition a lookup named was dropped
// after the reader read the partition set.
var errPartitionGone = errors.New("lookup: a partition was dropped")

// lookupWalk is one page's walk: what it found so far.
type lookupWalk struct {
	ctx context.Context
	r   *Reader
	q   LookupQuery
	out []lookupRow
	// batches counts the batches read; walked and found, the partitions
	// they read and the events those held.
	batches, walked, found int
	// skipped counts the partitions left unread (skips).
	skipped int
	// skip are the partitions the lookup summaries rule out, asked once the
	// first batch did not fill the page (asked tells).
	skip  map[uint32]bool
	asked bool
}

// skips reports whether the walk may leave p unread: its summary surely
// lacks one of the lookup's values. The summaries are asked once, when a
// batch of whole partitions was read and the page is not full, and the
// walk found nothing so far or, at the rate it found, expects to need
// more than a batch of 16 partitions: a busy value's page, full by then,
// and one the next batch should fill never pay for the question (2 to 4
// ms). Asked only past 92 partitions, a middling AccessKeyId's pgtrail
// lookup took a median 150 ms against 124, its Username's 92 against 80.
func (w *lookupWalk) skips(p partitionBound) (bool, error) {
	if w.batches == 0 || (!w.asked && w.found > 0 && w.chunk() <= partitionChunks[1]) {
		return false, nil
	}
	if !w.asked {
		skip, err := w.r.lookupSkips(w.ctx, w.q)
		if err != nil {
			return false, err
		}
		w.skip, w.asked = skip, true
	}
	return w.skip[p.oid], nil
}

// chunk is how many partitions the next batch reads (partitionChunks).
func (w *lookupWalk) chunk() int {
	if w.found == 0 {
		return partitionChunks[min(w.batches, len(partitionChunks)-1)]
	}
	need := w.q.Limit - len(w.out)
	n := (3*need*w.walked + 2*w.found - 1) / (2 * w.found)
	return max(partitionChunks[0], min(n, partitionChunks[len(partitionChunks)-1]))
}

// LookupEvents returns one page of the events q selects, newest first, in
// (event_time, event_id) order. The page is keyset-paged: q.After excludes
// every event at or before the previous page's last, so that events stored
// meanwhile neither shift nor repeat a page.
//
// The range, clamped to the oldest partition, is read newest first until
// the page is full or the range is covered: see lookupCustomSpans and
// partitionChunks. Where a partition's bounds are unknown (a default
// partition), it is read in windows of growing span instead
// (lookupWindows).
func (r *Reader) LookupEvents(ctx context.Context, q LookupQuery) ([]LookupEvent, error) {
	w, hi, err := newLookupWalk(ctx, r, q)
	if err != nil {
		return nil, err
	}
	custom := lookupCustomSpans
	for try := 0; ; try++ {
		set, err := r.partitions(ctx)
		if err != nil {
			return nil, err
		}
		if set.parts == nil {
			err = r.windows(ctx, q.Start, hi, false, w.window)
		} else {
			hi, custom, err = w.partitions(set, hi, custom)
		}
		if errors.Is(err, errPartitionGone) && try < 3 {
			// Read the set again, and the rest of the range in it.
			r.parts.invalidate()
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(w.out) > q.Limit {
			w.out = w.out[:q.Limit]
		}
		if r.afterWalk != nil {
			r.afterWalk(w.walked, w.skipped)
		}
		return r.withDerived(ctx, w.out)
	}
}

// newLookupWalk checks q and starts its walk, which reads the range up to
// hi, excluded: past q.End, or past the cursor's instant (its smaller IDs
// follow it).
func newLookupWalk(ctx context.Context, r *Reader, q LookupQuery) (*lookupWalk, time.Time, error) {
	if _, _, err := lookupSQL(q, false); err != nil {
		return nil, time.Time{}, err
	}
	hi := q.End
	if q.After != nil && q.After.Time.Before(hi) {
		hi = q.After.Time
	}
	return &lookupWalk{ctx: ctx, r: r, q: q}, hi.Add(usec), nil
}

// window reads [lo, hi) by one statement planned for its bounds, and
// reports whether the page is full.
func (w *lookupWalk) window(lo, hi time.Time) (bool, error) {
	q := w.q
	q.Start, q.End, q.Limit = lo, hi, w.q.Limit-len(w.out)
	page, err := w.r.lookupWindow(w.ctx, q)
	w.out = append(w.out, page...)
	return len(w.out) >= w.q.Limit, err
}

// partitions reads [q.Start, hi) in set's partitions: first the custom
// spans left, then partition by partition. It returns where it stopped and
// the custom spans still to read, for a walk that must go on in a set read
// again (errPartitionGone).
func (w *lookupWalk) partitions(set partitionSet, hi time.Time, custom []time.Duration) (time.Time, []time.Duration, error) {
	lo := maxTime(w.q.Start, set.oldest)
	for len(custom) > 0 && lo.Before(hi) {
		wlo := maxTime(lo, hi.Add(-custom[0]))
		full, err := w.window(wlo, hi)
		if full || err != nil {
			return hi, custom, err
		}
		hi, custom = wlo, custom[1:]
	}
	var run []partitionBound
	for _, p := range set.parts {
		if !p.lo.Before(hi) {
			continue // newer than the walk's position
		}
		if !p.hi.After(lo) {
			break // older than the range
		}
		if skip, err := w.skips(p); skip || err != nil {
			if err != nil {
				return hi, nil, err
			}
			w.skipped++
			continue
		}
		if p.hi.After(hi) || p.lo.Before(lo) {
			// A partition the range cuts: the whole ones newer first.
			full, at, err := w.batch(run)
			if full || err != nil {
				return at, nil, err
			}
			run = nil
			wlo := maxTime(lo, p.lo)
			if full, err := w.window(wlo, minTime(hi, p.hi)); full || err != nil {
				return hi, nil, err
			}
			hi = wlo
			continue
		}
		run = append(run, p)
		if len(run) >= w.chunk() {
			full, at, err := w.batch(run)
			if full || err != nil {
				return at, nil, err
			}
			run, hi = nil, p.lo
		}
	}
	_, at, err := w.batch(run)
	return at, nil, err
}

// batch reads whole partitions, newest first, each by its own statement,
// all in one pipeline. It reports whether the page is full, and where the
// partitions read end: on errPartitionGone, the upper bound of the one
// that was dropped, from where the walk goes on.
func (w *lookupWalk) batch(run []partitionBound) (full bool, at time.Time, err error) {
	if len(run) == 0 {
		return false, time.Time{}, nil
	}
	w.batches++
	need := w.q.Limit - len(w.out)
	b := &pgx.Batch{}
	// The plan a statement of one partition is given once per connection
	// serves every execution after; the reader's sessions otherwise plan
	// every statement for its bounds (OpenReader). Local to the batch's
	// implicit transaction.
	b.Queue(`SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`)
	for _, p := range run {
		sql, args, err := partitionSQL(w.q, p.name, need)
		if err != nil {
			return false, run[0].hi, err
		}
		b.Queue(sql, args...)
	}
	if w.r.beforeBatch != nil {
		w.r.beforeBatch()
	}
	br := w.r.pool.SendBatch(w.ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		// Preparing the statements (the first time this connection meets
		// them) failed before any ran.
		return false, run[0].hi, partitionErr(err)
	}
	for _, p := range run {
		rows, err := br.Query()
		if err != nil {
			return false, p.hi, partitionErr(err)
		}
		page, err := lookupRows(rows)
		if err != nil {
			if gone := partitionErr(err); errors.Is(gone, errPartitionGone) {
				// The statement stays prepared on the connection until
				// its cache lets it go; a partition made again under the
				// same name (a backfill's) is what it reads then.
				return false, p.hi, gone
			}
			return false, p.hi, err
		}
		w.out = append(w.out, page...)
		w.walked, w.found = w.walked+1, w.found+len(page)
		if len(w.out) >= w.q.Limit {
			return true, p.lo, nil
		}
	}
	return false, run[len(run)-1].lo, nil
}

// partitionErr is errPartitionGone for a statement that named a dropped
// partition (undefined_table), err otherwise.
func partitionErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return fmt.Errorf("%w: %s", errPartitionGone, pgErr.Message)
	}
	return fmt.Errorf("postgres: lookup: %w", classify(err))
}

// partitionSQL is the statement that reads a whole partition, table, for
// q: q's conditions but its bounds and cursor (every event of the
// partition is in range and older than the cursor), the newest limit
// events. Its text depends on the partition and on q's attribute keys,
// never on values, so that each connection plans it once.
func partitionSQL(q LookupQuery, table string, limit int) (string, []any, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds, err := lookupConds(q, arg)
	if err != nil {
		return "", nil, err
	}
	sql := lookupColumns + `
FROM ` + table + `
WHERE ` + strings.Join(conds, "\n  AND ") + `
ORDER BY event_time DESC, event_id DESC
LIMIT ` + arg(limit)
	return sql, args, nil
}
