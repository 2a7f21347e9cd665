package cloudtrail

// Member is one top-level member of a record, as Normalize found it while
// it walked the record: where its key's text (between the quotes) and its
// value lie in Event.Record. A rules engine that reads fields of the record
// starts from these instead of walking the record's top level again.
type Member struct {
	KeyStart, ValueStart, ValueEnd int32
	KeyLen                         uint16
	// Key is which of the keys Normalize maps the key is (see MemberKey),
	// once its escapes are decoded; 0 for another key.
	Key uint8
	// KeyEscaped says the key's text has backslash escapes.
	KeyEscaped bool
}

// Layout is what Normalize found of a record's shape.
type Layout struct {
	// Members are the record's top-level members in record order,
	// duplicated keys included; nil when the record was not walked as a
	// whole by Normalize (an event built otherwise, or a key longer than
	// 65,535 bytes).
	Members []Member
	// Escaped says that some string of the record, key or value, has
	// backslash escapes; without, every key and value is its own text.
	Escaped bool
}

// Member.Key values for the top-level keys that are objects Normalize
// looks into; the others are the field that the key maps, plus one.
const (
	keyUserIdentity = numFields + 1 + iota
	keyInsightDetails
	numMemberKeys
)

// memberKeys is the text of each Member.Key; member (normalize.go) maps
// the same keys, and TestMemberKeys checks that the two agree.
var memberKeys = [numMemberKeys]string{
	fEventID + 1: "eventID", fEventTime + 1: "eventTime", fEventVersion + 1: "eventVersion",
	fEventSource + 1: "eventSource", fEventName + 1: "eventName", fEventType + 1: "eventType",
	fEventCategory + 1: "eventCategory", fAWSRegion + 1: "awsRegion",
	fSourceIPAddress + 1: "sourceIPAddress", fUserAgent + 1: "userAgent", fErrorCode + 1: "errorCode",
	fErrorMessage + 1: "errorMessage", fRequestID + 1: "requestID", fReadOnly + 1: "readOnly",
	fManagementEvent + 1: "managementEvent", fRecipientAccountID + 1: "recipientAccountId",
	fSharedEventID + 1: "sharedEventID", fVPCEndpointID + 1: "vpcEndpointId",
	fRequestParameters + 1: "requestParameters", fResponseElements + 1: "responseElements",
	fAdditionalEventData + 1: "additionalEventData", fResources + 1: "resources",
	keyUserIdentity: "userIdentity", keyInsightDetails: "insightDetails",
}

// MemberKey returns the key that Member.Key k stands for, "" for none.
func MemberKey(k uint8) string {
	if int(k) >= len(memberKeys) {
		return ""
	}
	return memberKeys[k]
}

// NumMemberKeys is one more than the largest Member.Key.
const NumMemberKeys = numMemberKeys

// layout returns the members p found, as offsets into the record's copy
// (which starts at p.start), in mem if it has room.
func (p *recordParser) layout(a *arena) Layout {
	if p.longKey {
		return Layout{Escaped: p.flags&flagEscape != 0}
	}
	ms := a.members(len(p.top))
	for i, m := range p.top {
		m.KeyStart -= int32(p.start)
		m.ValueStart -= int32(p.start)
		m.ValueEnd -= int32(p.start)
		ms[i] = m
	}
	return Layout{Members: ms, Escaped: p.flags&flagEscape != 0}
}
