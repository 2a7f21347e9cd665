package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// Partition is a partition of cloudtrail_events that retention dropped, or
// would drop.
type Partition struct {
	Name string
	// Start and End bound the partition's range of event_time: [Start, End).
	Start, End time.Time
	// ApproxRows is the planner's estimate of the partition's rows, -1 if it
	// was never analyzed.
	ApproxRows int64
}

// ErrRetentionBusy reports that another process is applying retention.
var ErrRetentionBusy = errors.New("retention: another pgtrail is applying retention")

// retentionLockKey is the advisory lock that lets one process at a time
// apply retention.
const retentionLockKey int64 = 0x70677472_61696c02 // "pgtrail" + 2

// retentionLockTimeout bounds the wait for the ACCESS EXCLUSIVE lock on
// cloudtrail_events that dropping a partition takes: while retention waits,
// new queries and writes queue behind it, so it gives up early and tries
// again later rather than stall ingestion behind a long analyst query.
const retentionLockTimeout = 5 * time.Second

// RetentionCutoff is where a retention of days, applied at now, cuts:
// midnight UTC, days days before today. Partitions that end at or before it
// go; every event younger than days×24h stays.
func RetentionCutoff(now time.Time, days int) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d-days, 0, 0, 0, 0, time.UTC)
}

// DropPartitionsBefore drops the partitions of cloudtrail_events that lie
// wholly before cutoff (rounded down to midnight UTC), oldest first, and
// returns them; with dryRun it drops nothing and returns what it would drop.
// Whole partitions go: rows are never deleted one by one. The activity rows
// of the hours before cutoff go in the same transaction (activity.go).
//
// One process drops at a time: if another holds the retention lock it
// returns ErrRetentionBusy. If the table stays in use for longer than a few
// seconds it gives up with an error and drops nothing.
func (p *Postgres) DropPartitionsBefore(ctx context.Context, cutoff time.Time, dryRun bool) ([]Partition, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("retention: begin: %w", classify(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit

	if !dryRun {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, retentionLockKey).Scan(&locked); err != nil {
			return nil, fmt.Errorf("retention: lock: %w", classify(err))
		}
		if !locked {
			return nil, ErrRetentionBusy
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`,
			fmt.Sprintf("%dms", retentionLockTimeout.Milliseconds())); err != nil {
			return nil, fmt.Errorf("retention: set lock_timeout: %w", classify(err))
		}
	}
	rows, _ := tx.Query(ctx, `SELECT partition_name, range_start, range_end, approx_rows
        FROM pgtrail_drop_partitions_before(date '1970-01-01' + $1::integer, $2)`, unixDay(cutoff), dryRun)
	parts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Partition])
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			return nil, fmt.Errorf("retention: cloudtrail_events stayed in use (a long query?) for %s; nothing dropped, try again later: %w",
				retentionLockTimeout, err)
		}
		return nil, fmt.Errorf("retention: %w", classify(err))
	}
	if !dryRun {
		// The dropped days' hours leave the activity rows in the same
		// transaction: a day stored again later (a backfill) counts from
		// nothing, and none of its new rows is deleted with the old.
		f, err := p.features(ctx)
		if err != nil {
			return nil, err
		}
		if f.activity {
			if _, err := tx.Exec(ctx, `SELECT pgtrail_compact_activity(date '1970-01-01' + $1::integer)`, unixDay(cutoff)); err != nil {
				return nil, fmt.Errorf("retention: activity: %w", classify(err))
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("retention: commit: %w", classify(err))
	}
	for i := range parts {
		parts[i].Start, parts[i].End = parts[i].Start.UTC(), parts[i].End.UTC()
	}
	if !dryRun && len(parts) > 0 {
		p.ForgetPartitions()
	}
	return parts, nil
}

// RunRetention keeps days days of events until ctx ends: it drops the older
// partitions, and deletes the settled alerts of older events and the
// activity of the hours dropped, at once and then every interval. Processes sharing the
// database take turns, one at a time; a failed attempt is logged and tried
// again after at most five minutes.
func (p *Postgres) RunRetention(ctx context.Context, days int, interval time.Duration) {
	log := p.log.With(zap.Int("retention_days", days))
	log.Info("retention started", zap.Duration("interval", interval))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next := interval
		cutoff := RetentionCutoff(time.Now(), days)
		parts, err := p.DropPartitionsBefore(ctx, cutoff, false)
		switch {
		case err == nil && len(parts) > 0:
			names := make([]string, len(parts))
			for i, pt := range parts {
				names[i] = pt.Name
			}
			log.Info("retention dropped partitions", zapDay(cutoff), zap.Strings("partitions", names))
		case err == nil:
			log.Debug("retention: nothing to drop", zapDay(cutoff))
		case errors.Is(err, ErrRetentionBusy):
			log.Debug("retention: another process is applying it")
		case ctx.Err() != nil:
			return
		default:
			log.Warn("retention failed", zap.Error(err))
			next = min(interval, 5*time.Minute)
		}
		if err == nil {
			// Alerts go with their events, once delivered (alerts_retention.go).
			switch d, err := p.DeleteAlertsBefore(ctx, cutoff, false); {
			case err == nil && d != (AlertsDeleted{}):
				log.Info("retention deleted settled alerts", zapDay(cutoff), zap.Int64("alerts", d.Alerts),
					zap.Int64("summaries", d.Summaries), zap.Int64("deliveries", d.Deliveries))
			case err != nil && ctx.Err() == nil:
				log.Warn("retention of alerts failed", zap.Error(err))
				next = min(interval, 5*time.Minute)
			}
		}
		timer.Reset(next)
	}
}
