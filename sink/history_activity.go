package sink

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// HistoryActivity counts the events f selects, and their errors, per bucket
// of time; buckets without events are left out. Buckets of whole hours are
// counted from the hour (UTC) at or before f.Start, others from f.Start;
// the first bucket may begin before f.Start, but counts no event before it.
//
// Without a filter beyond the time range, the whole hours of the range are
// read from cloudtrail_activity (activity.go), a row or a few an hour, and
// only the partial hours at its ends from the events: the chart of months
// of events costs what a day of them would. With a filter, or on a
// database without that table, every event in range is counted.
func (r *Reader) HistoryActivity(ctx context.Context, f HistoryFilter, bucket time.Duration) ([]ActivityBucket, error) {
	if bucket < time.Second {
		return nil, fmt.Errorf("history: activity bucket %s, want at least a second", bucket)
	}
	origin := f.Start.UTC()
	hourly := bucket%time.Hour == 0
	if hourly {
		origin = origin.Truncate(time.Hour)
	}
	sums := map[time.Time]*ActivityBucket{}
	lo, hi := f.Start, f.End.Add(usec)
	if hourly && unfiltered(f) {
		var err error
		if lo, hi, err = r.wholeHours(ctx, f, lo, hi, bucket, origin, sums); err != nil {
			return nil, err
		}
	}
	if err := r.countActivity(ctx, f, lo, hi, bucket, origin, sums); err != nil {
		return nil, err
	}
	out := make([]ActivityBucket, 0, len(sums))
	for _, b := range sums {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b ActivityBucket) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// wholeHours adds to sums what cloudtrail_activity holds for the whole
// hours of [lo, hi), clamped to the oldest partition, and the events of
// the partial hour at its end, and returns the range left to count: the
// partial hour at its start. Without the table, it is all left; without
// partitions, none is.
func (r *Reader) wholeHours(ctx context.Context, f HistoryFilter, lo, hi time.Time, bucket time.Duration, origin time.Time,
	sums map[time.Time]*ActivityBucket,
) (time.Time, time.Time, error) {
	ok, err := r.activityTable(ctx)
	if err != nil || !ok {
		return lo, hi, err
	}
	parts, oldest, err := r.oldestPartition(ctx)
	if err != nil || parts == 0 {
		return lo, lo, err
	}
	if oldest.After(lo) {
		lo = oldest
	}
	h0, h1 := lo.Truncate(time.Hour), hi.Truncate(time.Hour)
	if h0.Before(lo) {
		h0 = h0.Add(time.Hour)
	}
	if !h0.Before(h1) {
		return lo, hi, nil
	}
	if err := r.hourlyActivity(ctx, h0, h1, bucket, origin, sums); err != nil {
		return lo, hi, err
	}
	if err := r.countActivity(ctx, f, h1, hi, bucket, origin, sums); err != nil {
		return lo, hi, err
	}
	return lo, h0, nil
}

// unfiltered reports whether f selects by time only.
func unfiltered(f HistoryFilter) bool {
	return len(f.Attributes) == 0 && f.Account == "" && f.Region == "" && f.SourceIP == "" &&
		f.ErrorCode == "" && f.NameContains == ""
}

// activityTable reports whether cloudtrail_activity exists; once it does,
// that is remembered.
func (r *Reader) activityTable(ctx context.Context) (bool, error) {
	if r.activity.Load() {
		return true, nil
	}
	var ok bool
	if err := r.pool.QueryRow(ctx, `SELECT pg_catalog.to_regclass('cloudtrail_activity') IS NOT NULL`).Scan(&ok); err != nil {
		return false, fmt.Errorf("postgres: history activity: %w", classify(err))
	}
	if ok {
		r.activity.Store(true)
	}
	return ok, nil
}

// binExpr bins the timestamp expression col into buckets of bucket counted
// from origin.
func binExpr(col string, bucket time.Duration, origin time.Time) string {
	return "date_bin(make_interval(secs => " + strconv.FormatFloat(bucket.Seconds(), 'f', -1, 64) + "), " + col +
		", '" + origin.UTC().Format(time.RFC3339Nano) + "'::timestamptz)"
}

// hourlyActivity adds to sums the activity rows of the hours [h0, h1).
func (r *Reader) hourlyActivity(ctx context.Context, h0, h1 time.Time, bucket time.Duration, origin time.Time, sums map[time.Time]*ActivityBucket) error {
	rows, err := r.pool.Query(ctx, "SELECT "+binExpr("hour", bucket, origin)+` AS b, sum(events)::bigint, sum(errors)::bigint
FROM cloudtrail_activity WHERE hour >= $1 AND hour < $2 GROUP BY b`, h0, h1)
	if err != nil {
		return fmt.Errorf("postgres: history activity: %w", classify(err))
	}
	return addBuckets(rows, sums)
}

// countActivity adds to sums the events f selects in [lo, hi), counted.
func (r *Reader) countActivity(ctx context.Context, f HistoryFilter, lo, hi time.Time, bucket time.Duration, origin time.Time, sums map[time.Time]*ActivityBucket) error {
	if !lo.Before(hi) {
		return nil
	}
	return r.windows(ctx, lo, hi, false, func(lo, hi time.Time) (bool, error) {
		st, err := buildHistory(f, lo, hi, nil, "SELECT "+binExpr("event_time", bucket, origin)+" AS b, count(*), count(error_code)", "\nGROUP BY b")
		if err != nil {
			return true, err
		}
		rows, err := r.pool.Query(ctx, st.sql, st.args...)
		if err != nil {
			return true, fmt.Errorf("postgres: history activity: %w", classify(err))
		}
		return false, addBuckets(rows, sums)
	})
}

// addBuckets adds rows of (bucket, events, errors) to sums: a bucket may
// straddle two windows, or the table's hours and the events' ends.
func addBuckets(rows pgx.Rows, sums map[time.Time]*ActivityBucket) error {
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ActivityBucket])
	if err != nil {
		return fmt.Errorf("postgres: history activity: %w", classify(err))
	}
	for _, b := range got {
		if s := sums[b.Start]; s != nil {
			s.Events, s.Errors = s.Events+b.Events, s.Errors+b.Errors
		} else {
			sums[b.Start] = &b
		}
	}
	return nil
}
