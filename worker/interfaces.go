package worker

import (
	"context"
	"io"
)

// Row is one item of an object's record stream: an Event, or a Reject when
// the record could not become one.
type Row struct {
	Event  Event
	Reject *Reject
}

// RowSource yields one object's rows. Next fills row and returns io.EOF after
// the last one; any other error aborts the object's transaction.
type RowSource interface {
	Next(row *Row) error
}

// Object is one object's worth of rows on its way to the sink.
type Object struct {
	Bucket    string
	Key       string
	Size      int64
	MessageID string
	Rows      RowSource
}

// WriteResult counts what the sink did with one object.
type WriteResult struct {
	Events     int // events read from the object
	Inserted   int // new rows in cloudtrail_events
	Duplicates int // events already stored
	Rejected   int // records stored in cloudtrail_rejects
}

// Sink commits objects. Write pulls every row of every object and commits
// them, together with one ledger row per object, in a single transaction:
// either all of it is stored or none of it is. An event the database
// refuses for its values is stored as a reject instead, and counted so; an
// error that retrying cannot mend is marked Permanent.
type Sink interface {
	Write(ctx context.Context, objs []*Object) ([]WriteResult, error)
}

// Ledger tells whether an object was already committed, so that a
// redelivered notification does not fetch it again.
type Ledger interface {
	Processed(ctx context.Context, bucket, key string) (bool, error)
}

// ObjectGetter opens an object for reading.
type ObjectGetter interface {
	GetObject(ctx context.Context, bucket, key string) (body io.ReadCloser, size int64, err error)
}
