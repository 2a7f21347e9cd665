package sink

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
)

// What the writer refuses before PostgreSQL sees it: what would fail a
// whole transaction, for a reason pgtrail can tell, and say better, itself.
// Text from inside a record needs no check here: normalization makes it
// valid UTF-8 without NUL (cloudtrail.Normalize).

// maxIndexedBytes is the longest value the writer stores in a text column
// that an index of cloudtrail_events holds. A B-tree entry holds at most
// 2704 bytes (a third of a page); a longer value goes in only if it
// compresses enough, and a random one fails the transaction: "index row
// requires 10264 bytes" (SQLSTATE 54000). No value CloudTrail writes comes
// near: an eventID is a UUID, an ARN at most 2048 characters.
const maxIndexedBytes = 2048

// indexedFields are the fields of the text columns that the indexes of
// cloudtrail_events hold (migrations 0001, 0003 and 0008), by column name.
var indexedFields = []struct {
	column, field string
	value         func(e *cloudtrail.Event) string
}{
	{"error_code", "errorCode", func(e *cloudtrail.Event) string { return e.ErrorCode }},
	{"event_id", "eventID", func(e *cloudtrail.Event) string { return e.EventID }},
	{"event_name", "eventName", func(e *cloudtrail.Event) string { return e.EventName }},
	{"event_source", "eventSource", func(e *cloudtrail.Event) string { return e.EventSource }},
	{"source_ip_address", "sourceIPAddress", func(e *cloudtrail.Event) string { return e.SourceIPAddress }},
	{"user_identity_access_key_id", "userIdentity.accessKeyId", func(e *cloudtrail.Event) string { return e.UserIdentityAccessKeyID }},
	{"user_identity_arn", "userIdentity.arn", func(e *cloudtrail.Event) string { return e.UserIdentityARN }},
}

// checkEvent returns why e cannot be stored, or "" if it can.
func checkEvent(e *cloudtrail.Event) string {
	for _, f := range indexedFields {
		if n := len(f.value(e)); n > maxIndexedBytes {
			return fmt.Sprintf("%s of %d bytes: pgtrail indexes values of up to %d bytes", f.field, n, maxIndexedBytes)
		}
	}
	return ""
}

// refusal is the Reject that replaces the event at index of its object,
// which checkEvent refused for why.
func refusal(e *cloudtrail.Event, index int, why string) *cloudtrail.Reject {
	return &cloudtrail.Reject{S3Bucket: e.S3Bucket, S3Key: e.S3Key, Index: index, Reason: why, Raw: string(e.Record)}
}

// checkObjects returns a permanent error if the name of one of objs is not
// text that PostgreSQL can hold: none of its events, its rejects or its
// ledger row could be stored. S3 keys may hold any character; a local
// file's name, any byte.
func checkObjects(objs []*Object) error {
	for _, o := range objs {
		what, name := "key", o.Key
		if o.Bucket == "" {
			what = "file name"
		}
		why := notText(name)
		if why == "" {
			what, name, why = "bucket", o.Bucket, notText(o.Bucket)
		}
		if why != "" {
			return retry.Permanent(fmt.Errorf("postgres: %s %q %s, which PostgreSQL text cannot hold", what, name, why))
		}
	}
	return nil
}

// notText says why s is not PostgreSQL text, or returns "".
func notText(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "holds a NUL byte"
	case !utf8.ValidString(s):
		return "is not UTF-8"
	}
	return ""
}

// indexedColumns are the columns of indexedFields, sorted.
func indexedColumns() []string {
	var cols []string
	for _, f := range indexedFields {
		cols = append(cols, f.column)
	}
	slices.Sort(cols)
	return cols
}
