package sink

import (
	"io"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// Object is one S3 object (or local file) on its way to the database: its
// name and what its ledger row in cloudtrail_objects records besides the
// counts.
type Object struct {
	Bucket string
	Key    string
	Size   int64
	// MessageID is the SQS message that named the object; empty for a
	// local file.
	MessageID string
	// Read is what inflating the object found for its digest: the SHA-256
	// of its uncompressed bytes, and whether bytes followed its gzip
	// stream. The zero value (not Complete) stores no hash.
	Read cloudtrail.DigestLogRead
}

// contentSHA256 is the ledger's content_sha256: nil (NULL) when the object
// was not read to the end of a gzip stream.
func (o *Object) contentSHA256() []byte {
	if !o.Read.Complete {
		return nil
	}
	return o.Read.Hash[:]
}

// Name is s3://bucket/key, or a local file's path.
func (o *Object) Name() string {
	if o.Bucket == "" {
		return o.Key
	}
	return "s3://" + o.Bucket + "/" + o.Key
}

// BufferedObject is an object decoded whole: all its entries are in
// memory, and WriteBuffered may read them more than once.
type BufferedObject struct {
	Object
	Entries []cloudtrail.Entry
}

// EntrySource yields one streamed object's entries. Next fills e and
// returns io.EOF after the last one; any other error aborts the object's
// transaction and is returned as it is.
type EntrySource interface {
	Next(e *cloudtrail.Entry) error
}

// StreamedObject is an object too big to hold in memory: its entries are
// decoded as WriteStreamed reads them, once.
type StreamedObject struct {
	Object
	Entries EntrySource
}

// WriteResult counts what the sink did with one object.
type WriteResult struct {
	Events     int // events read from the object
	Inserted   int // new rows in cloudtrail_events
	Duplicates int // events already stored
	Rejected   int // records stored in cloudtrail_rejects
}

// entrySlice is the EntrySource of a BufferedObject, for the staging path.
type entrySlice struct {
	entries []cloudtrail.Entry
	i       int
}

func (s *entrySlice) Next(e *cloudtrail.Entry) error {
	if s.i >= len(s.entries) {
		return io.EOF
	}
	*e = s.entries[s.i]
	s.i++
	return nil
}
