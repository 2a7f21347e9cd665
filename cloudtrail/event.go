package cloudtrail

import (
	"encoding/json"
	"time"
)

// Event is one CloudTrail record normalized into a row of cloudtrail_events.
// Field names follow the table's columns; the column list is a contract with
// analysts (see README "Schema"), so fields are added, never renamed.
//
// Nullable text columns are empty strings here and are written as NULL by the
// sink. Nullable booleans are pointers. The JSON columns hold raw JSON text
// (nil for SQL NULL); Record always holds the complete original record.
type Event struct {
	EventID      string
	EventTime    time.Time
	EventVersion string
	EventSource  string
	EventName    string
	EventType    string
	// EventCategory is Management, Data, Insight or NetworkActivity.
	EventCategory string
	AWSRegion     string
	// SourceIPAddress is text, not inet: CloudTrail puts service names,
	// "AWS Internal" and comma-separated lists here.
	SourceIPAddress         string
	UserAgent               string
	UserIdentityType        string
	UserIdentityARN         string
	UserIdentityAccountID   string
	UserIdentityPrincipalID string
	UserIdentityAccessKeyID string
	UserIdentityUserName    string
	SessionIssuerARN        string
	SessionMFAAuthenticated *bool
	InvokedBy               string
	ErrorCode               string
	ErrorMessage            string
	RequestID               string
	ReadOnly                *bool
	ManagementEvent         *bool
	RecipientAccountID      string
	SharedEventID           string
	VPCEndpointID           string
	RequestParameters       json.RawMessage
	ResponseElements        json.RawMessage
	AdditionalEventData     json.RawMessage
	Resources               json.RawMessage
	Record                  json.RawMessage
	S3Bucket                string
	S3Key                   string

	// Layout is where Record's top-level members lie (members.go), for
	// rules engines. It is not a column, and stays the last field.
	Layout Layout
}

// Reject is a record that could not become an Event. It is kept, with the
// reason and the record's raw text, in cloudtrail_rejects.
type Reject struct {
	S3Bucket string
	S3Key    string
	// Index is the record's position in the object's Records array.
	Index  int
	Reason string
	Raw    string
}

// Entry is one item of an object's record stream: the Event a record
// became, or the Reject it became instead (Reject not nil).
type Entry struct {
	Event  Event
	Reject *Reject
}
