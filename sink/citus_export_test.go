package sink

import (
	"context"
	"slices"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// UniqueViolation, ProbeEvents and UpsertLedger are exported for the tests
// of what Citus needs of the write path (citus_test.go).
var (
	UniqueViolation = uniqueViolation
	ProbeEvents     = probeEvents
	UpsertLedger    = upsertLedger
)

// ProbeStored returns the ordinals (1-based, in order) of the keys
// (ids[k], times[k]) that the buffered path's probe finds stored.
func (p *Postgres) ProbeStored(ctx context.Context, ids []string, times []time.Time) ([]int, error) {
	evs := make([]*cloudtrail.Event, len(ids))
	check := make([]int, len(ids))
	for i := range ids {
		evs[i], check[i] = &cloudtrail.Event{EventID: ids[i], EventTime: times[i]}, i
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	stored, err := p.stored(ctx, tx, evs, check)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(stored))
	for i := range stored {
		out = append(out, i+1)
	}
	slices.Sort(out)
	return out, nil
}
