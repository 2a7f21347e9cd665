package sink

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// partitionCache keeps what oldestPartition found, with the fingerprint of
// the partition set it was found in: reading every partition's bound
// (pg_get_expr over a year of day partitions) took 90 ms on a busy
// two-core server, on every page; the fingerprint, from pg_inherits alone,
// about 1 ms. Any partition added or dropped changes the fingerprint, so
// the cached answer is never stale.
type partitionCache struct {
	mu          sync.Mutex
	fingerprint [3]int64 // count, sum and max of the partitions' OIDs
	n           int
	oldest      time.Time
	valid       bool
}

// oldestPartition counts the partitions of cloudtrail_events and returns
// the lower bound of the oldest; the zero time when one has no lower bound
// that a day partition would have (a default partition, MINVALUE).
func (r *Reader) oldestPartition(ctx context.Context) (int, time.Time, error) {
	var fp [3]int64
	err := r.pool.QueryRow(ctx, `
SELECT count(*), coalesce(sum(inhrelid::oid::int8), 0), coalesce(max(inhrelid::oid::int8), 0)
FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass`).Scan(&fp[0], &fp[1], &fp[2])
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("postgres: lookup: partitions: %w", classify(err))
	}
	c := &r.parts
	c.mu.Lock()
	if c.valid && c.fingerprint == fp {
		n, oldest := c.n, c.oldest
		c.mu.Unlock()
		return n, oldest, nil
	}
	c.mu.Unlock()

	var (
		n       int
		oldest  *time.Time
		unknown bool
	)
	err = r.pool.QueryRow(ctx, `
SELECT count(*), min(lo), coalesce(bool_or(lo IS NULL), false)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
     LATERAL (SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \(''([^'']+)''\)'))[1]::timestamptz AS lo) b
WHERE i.inhparent = 'cloudtrail_events'::regclass`).Scan(&n, &oldest, &unknown)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("postgres: lookup: oldest partition: %w", classify(err))
	}
	var lo time.Time
	if oldest != nil && !unknown {
		lo = *oldest
	}
	// The set may have changed between the two statements: what is kept
	// is then refreshed on the next call, whose fingerprint differs.
	c.mu.Lock()
	c.fingerprint, c.n, c.oldest, c.valid = fp, n, lo, true
	c.mu.Unlock()
	return n, lo, nil
}
