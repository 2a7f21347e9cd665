package sink

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// The writer streams events to COPY in PostgreSQL's binary format, encoded
// by hand: no interface boxing and no allocation per row or per value, and
// no text parsing on the server for timestamps and booleans.

// copyHeader begins a binary COPY stream: the signature, no flags, no
// header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyTrailer ends a binary COPY stream.
var copyTrailer = []byte{0xff, 0xff}

// numEventColumns is the number of columns in eventColumns.
var numEventColumns = len(cloudtrail.Columns)

// pgEpochMicros is PostgreSQL's timestamp epoch in Unix microseconds.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// CopyEventsSQL is the COPY statement that EncodeEvents' stream is for.
var CopyEventsSQL = `COPY cloudtrail_events (` + eventColumns + `) FROM STDIN (FORMAT binary)`

// EncodeEvents appends to dst a complete binary COPY stream (for
// CopyEventsSQL) of evs. recordJSONB says whether the record column is
// jsonb rather than json (the other JSON columns are jsonb). It is what the
// writer sends; the benchmark uses it to measure COPY alone.
func EncodeEvents(dst []byte, evs []cloudtrail.Event, recordJSONB bool) []byte {
	dst = append(dst, copyHeader...)
	for i := range evs {
		dst = appendEventRow(dst, &evs[i], recordJSONB)
	}
	return append(dst, copyTrailer...)
}

// appendEventRow appends one row of eventColumns: a value per
// cloudtrail.Columns entry, in its order (TestEncodeEventsColumns).
func appendEventRow(b []byte, e *cloudtrail.Event, recordJSONB bool) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(numEventColumns))
	b = appendString(b, e.EventID)
	b = binary.BigEndian.AppendUint32(b, 8)
	b = binary.BigEndian.AppendUint64(b, uint64(e.EventTime.UnixMicro()-pgEpochMicros))
	b = appendText(b, e.EventVersion)
	b = appendText(b, e.EventSource)
	b = appendText(b, e.EventName)
	b = appendText(b, e.EventType)
	b = appendText(b, e.EventCategory)
	b = appendText(b, e.AWSRegion)
	b = appendText(b, e.SourceIPAddress)
	b = appendText(b, e.UserAgent)
	b = appendText(b, e.UserIdentityType)
	b = appendText(b, e.UserIdentityARN)
	b = appendText(b, e.UserIdentityAccountID)
	b = appendText(b, e.UserIdentityPrincipalID)
	b = appendText(b, e.UserIdentityAccessKeyID)
	b = appendText(b, e.UserIdentityUserName)
	b = appendText(b, e.SessionIssuerARN)
	b = appendBool(b, e.SessionMFAAuthenticated)
	b = appendText(b, e.InvokedBy)
	b = appendText(b, e.ErrorCode)
	b = appendText(b, e.ErrorMessage)
	b = appendText(b, e.RequestID)
	b = appendBool(b, e.ReadOnly)
	b = appendBool(b, e.ManagementEvent)
	b = appendText(b, e.RecipientAccountID)
	b = appendText(b, e.SharedEventID)
	b = appendText(b, e.VPCEndpointID)
	b = appendJSON(b, e.RequestParameters, true)
	b = appendJSON(b, e.ResponseElements, true)
	b = appendJSON(b, e.AdditionalEventData, true)
	b = appendJSON(b, e.Resources, true)
	b = appendJSON(b, e.Record, recordJSONB)
	b = appendString(b, e.S3Bucket)
	b = appendString(b, e.S3Key)
	return b
}

// appendNull appends a NULL field.
func appendNull(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0xff) }

// appendText appends a nullable text field: "" is NULL.
func appendText(b []byte, s string) []byte {
	if s == "" {
		return appendNull(b)
	}
	return appendString(b, s)
}

// appendString appends a text field that is never NULL (a local file's
// s3_bucket is "").
func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v *bool) []byte {
	if v == nil {
		return appendNull(b)
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	if *v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendJSON appends a json or jsonb field; empty is NULL. jsonb's binary
// form is a version byte, 1, before the text.
func appendJSON(b []byte, v []byte, jsonb bool) []byte {
	if len(v) == 0 {
		return appendNull(b)
	}
	if jsonb {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)+1))
		b = append(b, 1)
	} else {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	}
	return append(b, v...)
}

// eventReader is a binary COPY stream of events, encoded as COPY reads it:
// straight into the reader's buffer, row by row, as long as the next row
// fits; a row bigger than the whole buffer is encoded aside and handed over
// in pieces.
type eventReader struct {
	evs    []*cloudtrail.Event
	jsonb  bool
	i      int
	big    []byte // a row that did not fit in an empty buffer
	off    int    // how much of big was handed over
	header bool
	done   bool
}

func (r *eventReader) Read(p []byte) (int, error) {
	if r.off < len(r.big) {
		n := copy(p, r.big[r.off:])
		r.off += n
		return n, nil
	}
	if r.done {
		return 0, io.EOF
	}
	b := p[:0:len(p)]
	if !r.header {
		if len(p) < len(copyHeader) {
			return 0, io.ErrShortBuffer
		}
		b = append(b, copyHeader...)
		r.header = true
	}
	for r.i < len(r.evs) && rowSizeBound(r.evs[r.i]) <= cap(b)-len(b) {
		b = appendEventRow(b, r.evs[r.i], r.jsonb)
		r.i++
	}
	if len(b) == 0 && r.i < len(r.evs) {
		r.big = appendEventRow(r.big[:0], r.evs[r.i], r.jsonb)
		r.i++
		r.off = copy(p, r.big)
		return r.off, nil
	}
	if r.i == len(r.evs) && cap(b)-len(b) >= len(copyTrailer) {
		b = append(b, copyTrailer...)
		r.done = true
	}
	return len(b), nil
}

// rowSizeBound is at least the length appendEventRow adds for e: the field
// count, a length word per column, eight bytes of time, a byte per bool, a
// version byte per JSON value, and the text.
func rowSizeBound(e *cloudtrail.Event) int {
	n := 2 + 4*numEventColumns + 8 + 3 + 5
	n += len(e.EventID) + len(e.EventVersion) + len(e.EventSource) + len(e.EventName) + len(e.EventType) +
		len(e.EventCategory) + len(e.AWSRegion) + len(e.SourceIPAddress) + len(e.UserAgent) +
		len(e.UserIdentityType) + len(e.UserIdentityARN) + len(e.UserIdentityAccountID) +
		len(e.UserIdentityPrincipalID) + len(e.UserIdentityAccessKeyID) + len(e.UserIdentityUserName) +
		len(e.SessionIssuerARN) + len(e.InvokedBy) + len(e.ErrorCode) + len(e.ErrorMessage) +
		len(e.RequestID) + len(e.RecipientAccountID) + len(e.SharedEventID) + len(e.VPCEndpointID) +
		len(e.RequestParameters) + len(e.ResponseElements) + len(e.AdditionalEventData) +
		len(e.Resources) + len(e.Record) + len(e.S3Bucket) + len(e.S3Key)
	return n
}
