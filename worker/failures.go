package worker

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/internal/retry"
)

// FailureRecorder stores the last failure of an object, so that the reason
// a message went to the dead-letter queue outlives the log (pgtrail dlq
// list). The Processor's ledger is asked for it; sink.Postgres is one.
type FailureRecorder interface {
	RecordFailure(ctx context.Context, bucket, key, messageID string, err error, permanent bool) error
}

// recordFailureTimeout bounds the write of one failure: short, since the
// database may be the cause.
const recordFailureTimeout = 2 * time.Second

// recordFailure stores err for ref when the ledger can, unless the work was
// only interrupted (shutdown), which is no failure of the object.
func (p *Processor) recordFailure(ctx context.Context, messageID string, ref ObjectRef, err error, log *zap.Logger) {
	fr, ok := p.ledger.(FailureRecorder)
	if !ok || err == nil || ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, recordFailureTimeout)
	defer cancel()
	if rerr := fr.RecordFailure(ctx, ref.Bucket, ref.Key, messageID, err, retry.IsPermanent(err)); rerr != nil {
		log.Warn("could not record the object's failure", zap.Error(rerr))
	}
}
