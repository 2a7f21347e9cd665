package worker

import (
	"context"

	"github.com/pgtrail/pgtrail/sink"
)

// Sink commits objects; sink.Postgres is the one cmd/pgtrail wires in. The
// worker says which way each object goes: objects decoded whole are
// batched into WriteBuffered, an object too big to hold in memory is
// streamed alone into WriteStreamed. Either call stores all of its objects'
// entries, with one ledger row per object, in a single transaction, or
// none of them. An event the database refuses for its values is stored as
// a reject instead, and counted so; an error that retrying cannot mend is
// marked retry.Permanent.
type Sink interface {
	WriteBuffered(ctx context.Context, objs []*sink.BufferedObject) ([]sink.WriteResult, error)
	WriteStreamed(ctx context.Context, obj *sink.StreamedObject) (sink.WriteResult, error)
}

// Ledger tells whether an object was already committed, so that a
// redelivered notification does not fetch it again.
type Ledger interface {
	Processed(ctx context.Context, bucket, key string) (bool, error)
}
