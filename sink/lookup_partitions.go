package sink

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// partitionBound is one partition of cloudtrail_events: its name, as a
// statement may name it, and its range [lo, hi).
type partitionBound struct {
	name string
	// oid identifies the partition, as its lookup summary names it.
	oid    uint32
	lo, hi time.Time
}

// partitionSet is what the reader knows of the partitions of
// cloudtrail_events.
type partitionSet struct {
	// n counts the partitions.
	n int
	// oldest is the lower bound of the oldest partition; the zero time when
	// one has no lower bound that a day partition would have (a default
	// partition, MINVALUE).
	oldest time.Time
	// parts are the partitions, newest first; nil unless every partition
	// is a plain table of known FROM ... TO bounds (no default partition,
	// none partitioned again), the only case in which a lookup reads them
	// one by one.
	parts []partitionBound
}

// partitionCache keeps the partition set, with the fingerprint of the
// partition set it was read in: reading every partition's bound
// (pg_get_expr over a year of day partitions) took 90 ms on a busy
// two-core server, on every page; the fingerprint, from pg_inherits alone,
// about 1 ms. Any partition added or dropped changes the fingerprint, so
// the cached answer is never stale for long: a partition dropped between
// the fingerprint's read and a statement naming it is what
// Reader.LookupEvents recovers from.
type partitionCache struct {
	mu          sync.Mutex
	fingerprint [3]int64 // count, sum and max of the partitions' OIDs
	set         partitionSet
	valid       bool
}

// invalidate makes the next partitions call read the bounds again.
func (c *partitionCache) invalidate() {
	c.mu.Lock()
	c.valid = false
	c.mu.Unlock()
}

// oldestPartition counts the partitions of cloudtrail_events and returns
// the lower bound of the oldest (partitionSet.oldest).
func (r *Reader) oldestPartition(ctx context.Context) (int, time.Time, error) {
	set, err := r.partitions(ctx)
	return set.n, set.oldest, err
}

// partitions returns the partition set, read again only when its
// fingerprint changed.
func (r *Reader) partitions(ctx context.Context) (partitionSet, error) {
	var fp [3]int64
	err := r.pool.QueryRow(ctx, `
SELECT count(*), coalesce(sum(inhrelid::oid::int8), 0), coalesce(max(inhrelid::oid::int8), 0)
FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass`).Scan(&fp[0], &fp[1], &fp[2])
	if err != nil {
		return partitionSet{}, fmt.Errorf("postgres: lookup: partitions: %w", classify(err))
	}
	c := &r.parts
	c.mu.Lock()
	if c.valid && c.fingerprint == fp {
		set := c.set
		c.mu.Unlock()
		return set, nil
	}
	c.mu.Unlock()

	rows, err := r.pool.Query(ctx, `
SELECT c.oid::regclass::text, c.oid, c.relkind = 'r', `+boundLo+`, `+boundHi+`
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL pg_get_expr(c.relpartbound, 0) b
WHERE i.inhparent = 'cloudtrail_events'::regclass`)
	if err != nil {
		return partitionSet{}, fmt.Errorf("postgres: lookup: partition bounds: %w", classify(err))
	}
	var (
		set partitionSet
		// noLow: a partition has no lower bound (MINVALUE, a default
		// partition); unread: a lookup cannot read the partitions one by one.
		noLow, unread bool
		oldest        time.Time
	)
	for rows.Next() {
		var (
			name   string
			oid    uint32
			plain  bool
			lo, hi *time.Time
		)
		if err := rows.Scan(&name, &oid, &plain, &lo, &hi); err != nil {
			rows.Close()
			return partitionSet{}, fmt.Errorf("postgres: lookup: partition bounds: %w", err)
		}
		set.n++
		switch {
		case lo == nil:
			noLow, unread = true, true
			continue
		case oldest.IsZero() || lo.Before(oldest):
			oldest = *lo
		}
		if hi == nil || !plain {
			unread = true
			continue
		}
		set.parts = append(set.parts, partitionBound{name: name, oid: oid, lo: *lo, hi: *hi})
	}
	if err := rows.Err(); err != nil {
		return partitionSet{}, fmt.Errorf("postgres: lookup: partition bounds: %w", classify(err))
	}
	slices.SortFunc(set.parts, func(a, b partitionBound) int { return b.lo.Compare(a.lo) })
	if !noLow {
		set.oldest = oldest
	}
	if unread {
		set.parts = nil
	}
	// The set may have changed between the two statements: what is kept
	// is then refreshed on the next call, whose fingerprint differs.
	c.mu.Lock()
	c.fingerprint, c.set, c.valid = fp, set, true
	c.mu.Unlock()
	return set, nil
}

// boundLo and boundHi cut a partition's bounds out of b, its relpartbound
// as pg_get_expr writes it: FOR VALUES FROM ('…') TO ('…'), MINVALUE or
// MAXVALUE for a side that has none (NULL here), DEFAULT for a default
// partition (both NULL). A bound holds no column, so pg_get_expr needs no
// relation (0): given the partition's, it opened each, 40 ms for a year of
// partitions in a new session. Cut with split_part: a regular expression
// cost 10 to 15 ms more. Reading a year's bounds takes 5 to 8 ms.
const (
	boundLo = `CASE WHEN b LIKE 'FOR VALUES FROM (''%' THEN split_part(b, '''', 2)::timestamptz END`
	boundHi = `CASE WHEN b LIKE '%) TO (''%'')' THEN reverse(split_part(reverse(b), '''', 2))::timestamptz END`
)

// maxTime is the later of two times.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
