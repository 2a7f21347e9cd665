package sink

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Activity per hour (migration 0014): every write adds, in its own
// transaction, one row per hour of the events it inserted, with how many
// it inserted and how many of those failed (error_code set), so that the
// rows of an hour always sum to what cloudtrail_events holds for it. The
// history page's chart reads them (history_activity.go) instead of
// counting the events of a wide range. The rows are only ever added: two
// writers never wait on each other for a counter; CompactActivity merges
// them from time to time.

// hourCounts counts inserted events, and failed ones, by Unix hour.
type hourCounts map[int64]*[2]int64

// add counts one inserted event.
func (h hourCounts) add(t time.Time, failed bool) {
	var errs int64
	if failed {
		errs = 1
	}
	h.addN(t, 1, errs)
}

// addN counts events inserted in the hour of t, errs of them failed.
func (h hourCounts) addN(t time.Time, events, errs int64) {
	c := h[hourOf(t)]
	if c == nil {
		c = new([2]int64)
		h[hourOf(t)] = c
	}
	c[0] += events
	c[1] += errs
}

// hourOf is the Unix hour that t falls in.
func hourOf(t time.Time) int64 {
	s := t.Unix()
	if s < 0 && s%3600 != 0 {
		return s/3600 - 1
	}
	return s / 3600
}

// insertActivity adds the rows of one write.
const insertActivity = `INSERT INTO cloudtrail_activity (hour, events, errors)
    SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::bigint[])`

// queueActivity queues the rows of h, in hour order, if it counted any.
func queueActivity(batch *pgx.Batch, h hourCounts) {
	if len(h) == 0 {
		return
	}
	hours := make([]int64, 0, len(h))
	for k := range h {
		hours = append(hours, k)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	at := make([]time.Time, len(hours))
	events := make([]int64, len(hours))
	errs := make([]int64, len(hours))
	for i, k := range hours {
		at[i] = time.Unix(k*3600, 0).UTC()
		events[i], errs[i] = h[k][0], h[k][1]
	}
	batch.Queue(insertActivity, at, events, errs)
}

// eventHour is the hour of event_time, as cloudtrail_activity keys it.
const eventHour = `date_bin('1 hour', event_time, timestamptz '1970-01-01 00:00:00+00')`

// stagedActivity counts, by hour, the staged events that insertEach
// inserted (refuse.go): neither refused nor found stored.
const stagedActivity = `SELECT ` + eventHour + `, count(*), count(error_code)
    FROM pgtrail_staging WHERE reason IS NULL AND NOT dup GROUP BY 1`

// readActivity adds the rows of a query of (hour, events, errors) to h.
func readActivity(rows pgx.Rows, h hourCounts) error {
	defer rows.Close()
	for rows.Next() {
		var at time.Time
		var events, errs int64
		if err := rows.Scan(&at, &events, &errs); err != nil {
			return err
		}
		h.addN(at, events, errs)
	}
	return rows.Err()
}

// CompactActivity merges each hour's activity rows into one and, unless
// cutoff is zero, deletes the hours before cutoff's day (retention). It
// returns how many rows fewer there are.
func (p *Postgres) CompactActivity(ctx context.Context, cutoff time.Time) (int64, error) {
	f, err := p.features(ctx)
	if err != nil || !f.activity {
		return 0, err
	}
	var day any
	if !cutoff.IsZero() {
		day = unixDay(cutoff)
	}
	var merged, deleted int64
	err = p.pool.QueryRow(ctx, `SELECT merged, deleted FROM pgtrail_compact_activity(date '1970-01-01' + $1::integer)`, day).
		Scan(&merged, &deleted)
	if err != nil {
		return 0, fmt.Errorf("postgres: compact activity: %w", classify(err))
	}
	return merged + deleted, nil
}

// RunActivityCompaction calls CompactActivity every interval until ctx
// ends. Several processes may: each merges what the others have not.
func (p *Postgres) RunActivityCompaction(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if n, err := p.CompactActivity(ctx, time.Time{}); err != nil && ctx.Err() == nil {
			p.log.Warn("activity compaction failed", zap.Error(err))
		} else if n > 0 {
			p.log.Debug("activity compacted", zap.Int64("rows", n))
		}
	}
}
