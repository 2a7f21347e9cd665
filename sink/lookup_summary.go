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

// Lookup summaries (migrations/0015_lookup_summaries.sql) are a Bloom
// filter of each closed day partition's lookup values. A walk that did not
// fill its page from the newest hour, day and first partitions asks them,
// once, which partitions surely lack one of its values, and reads none of
// those: a rare EventId, ResourceName or AccessKeyId over a year is then a
// read of the few days that may hold it, not of 366.

// summaryKeys are the keys a lookup's attributes ask the summaries for
// (pgtrail_lookup_summaries_lacking), nil when none of them is summarized
// (ReadOnly, or no attribute).
func summaryKeys(q LookupQuery) []string {
	var keys []string
	for _, a := range q.Attributes {
		var prefix string
		switch a.Key {
		case AttrEventID:
			prefix = "i:"
		case AttrEventName:
			prefix = "e:"
		case AttrEventSource:
			prefix = "s:"
		case AttrAccessKeyID:
			prefix = "k:"
		case AttrUsername:
			prefix = "u:"
		case AttrResourceType:
			prefix = "t:"
		case AttrResourceName:
			prefix = "n:"
		default:
			continue
		}
		keys = append(keys, prefix+a.Value)
	}
	return keys
}

// lookupSkips returns the partitions whose summaries surely lack one of
// q's values; nil when q asks for nothing summarized, or the database
// keeps no summaries.
func (r *Reader) lookupSkips(ctx context.Context, q LookupQuery) (map[uint32]bool, error) {
	keys := summaryKeys(q)
	if len(keys) == 0 || r.noSummaries.Load() {
		return nil, nil
	}
	rows, _ := r.pool.Query(ctx, `SELECT relid FROM pgtrail_lookup_summaries_lacking($1)`, keys)
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, r.summaryErr(err)
	}
	skip := make(map[uint32]bool, len(oids))
	for _, oid := range oids {
		skip[oid] = true
	}
	return skip, nil
}

// summaryErr is nil for a database without summaries (not migrated to
// 0015 yet), remembered; the error, classified, otherwise.
func (r *Reader) summaryErr(err error) error {
	if missingSummaries(err) {
		r.noSummaries.Store(true)
		return nil
	}
	return fmt.Errorf("postgres: lookup summaries: %w", classify(err))
}

// missingSummaries reports an error naming a table or function that 0015
// makes.
func missingSummaries(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42883")
}

// SummarizeLookupDays summarizes the closed days that have no lookup
// summary, newest first, each in its own transaction, and returns how many
// it summarized. It stops early, with nothing done, while another session
// summarizes; and on a database migrated before 0015.
func (p *Postgres) SummarizeLookupDays(ctx context.Context) (int, error) {
	n := 0
	for {
		var day *time.Time
		err := p.pool.QueryRow(ctx, `SELECT pgtrail_summarize_lookup_day()`).Scan(&day)
		if missingSummaries(err) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("postgres: summarize lookup day: %w", classify(err))
		}
		if day == nil {
			return n, nil
		}
		n++
		p.log.Debug("lookup day summarized", zap.Time("day", *day))
	}
}

// RunLookupSummaries summarizes the closed days at once, then every
// interval, until ctx ends: a day closes once a day, and a day whose
// summary an event stored late deleted is summarized again.
func (p *Postgres) RunLookupSummaries(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if n, err := p.SummarizeLookupDays(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("lookup summaries failed", zap.Error(err))
		} else if n > 0 {
			p.log.Info("lookup days summarized", zap.Int("days", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
