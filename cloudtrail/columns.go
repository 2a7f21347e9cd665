package cloudtrail

// Column is one column of cloudtrail_events that an Event fills.
type Column struct {
	// Name is the column's name, Event's field name in snake case.
	Name string
	// Type is the column's SQL type in cloudtrail_events (the record
	// column may also be json: see sink).
	Type string
}

// Columns are the columns of cloudtrail_events that an Event fills, in
// the order of Event's fields: the one list of them. The sink builds its
// staging table, column lists and COPY stream from it, a test here checks
// it against Event, and one in sink against the migrated table. Like
// Event's fields, columns are added, never renamed.
var Columns = []Column{
	{"event_id", "text"},
	{"event_time", "timestamptz"},
	{"event_version", "text"},
	{"event_source", "text"},
	{"event_name", "text"},
	{"event_type", "text"},
	{"event_category", "text"},
	{"aws_region", "text"},
	{"source_ip_address", "text"},
	{"user_agent", "text"},
	{"user_identity_type", "text"},
	{"user_identity_arn", "text"},
	{"user_identity_account_id", "text"},
	{"user_identity_principal_id", "text"},
	{"user_identity_access_key_id", "text"},
	{"user_identity_user_name", "text"},
	{"session_issuer_arn", "text"},
	{"session_mfa_authenticated", "boolean"},
	{"invoked_by", "text"},
	{"error_code", "text"},
	{"error_message", "text"},
	{"request_id", "text"},
	{"read_only", "boolean"},
	{"management_event", "boolean"},
	{"recipient_account_id", "text"},
	{"shared_event_id", "text"},
	{"vpc_endpoint_id", "text"},
	{"request_parameters", "jsonb"},
	{"response_elements", "jsonb"},
	{"additional_event_data", "jsonb"},
	{"resources", "jsonb"},
	{"record", "jsonb"},
	{"s3_bucket", "text"},
	{"s3_key", "text"},
}
