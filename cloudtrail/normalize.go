package cloudtrail

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// SyntheticIDPrefix begins the EventID that Normalize derives for a record
// without one. No AWS event ID (a UUID) begins with it.
const SyntheticIDPrefix = "sha256:"

// Normalize turns one raw record, as returned by Decoder.Next, into an Event,
// or explains why it cannot: the caller stores a Reject with the error's text
// as the reason and raw as the record. The Event does not alias raw.
//
// The mapping is tolerant; only eventTime is required:
//
//   - eventTime is RFC 3339 with or without fractional seconds, with 'T' or a
//     space between date and time ("2021-05-20 15:53:47Z" occurs), or
//     "YYYY-MM-DD HH:MM:SS[.fffffffff]" without a zone, taken as UTC. It is
//     stored in UTC. Absent or null: "eventTime missing"; anything else:
//     "eventTime unparseable: <the JSON value>".
//   - A record without a non-empty string eventID gets SyntheticIDPrefix and
//     the hex SHA-256 of the record's bytes, so redelivery stays idempotent.
//   - Text fields take a JSON string's value, or a number's or boolean's
//     text; null, objects and arrays give "". Text is valid UTF-8 without
//     NUL: both are replaced with U+FFFD, as jsonb and text columns refuse them.
//   - readOnly, managementEvent and sessionContext.attributes.mfaAuthenticated
//     accept a boolean or the strings "true" and "false" in any case; other
//     values give nil.
//   - requestParameters, responseElements, additionalEventData and resources
//     keep their raw JSON, of any type; JSON null gives nil.
//   - Insight records (eventType AwsCloudTrailInsight) have no top-level
//     eventSource and eventName; they come from insightDetails.
//   - UserIdentityUserName is userIdentity.userName only. For an assumed
//     role it stays empty: the role's name is in SessionIssuerARN, and
//     filling it in would make an IAM user and a role of the same name
//     indistinguishable.
//   - Keys match exactly, as in jsonb queries (userIdentity.accountid is
//     not accountId), and of a duplicated key the last one counts, as in jsonb.
//
// Record is the raw record, repaired as Decoder.Next repairs it if the
// caller did not use a Decoder. The JSON columns are slices of Record.
func Normalize(raw []byte, bucket, key string) (Event, error) {
	var p recordParser
	if err := p.parse(raw); err != nil {
		return Event{}, err
	}
	if p.flags&flagDirty != 0 {
		raw = appendSanitized(nil, raw[p.start:p.end])
		p = recordParser{}
		if err := p.parse(raw); err != nil {
			return Event{}, err
		}
	}
	return p.event(bucket, key, nil)
}

// Fields that Normalize maps, in the order their text is laid out.
const (
	fEventID = iota
	fEventVersion
	fEventSource
	fEventName
	fEventType
	fEventCategory
	fAWSRegion
	fSourceIPAddress
	fUserAgent
	fIdentityType
	fIdentityARN
	fIdentityAccountID
	fIdentityPrincipalID
	fIdentityAccessKeyID
	fIdentityUserName
	fSessionIssuerARN
	fInvokedBy
	fErrorCode
	fErrorMessage
	fRequestID
	fRecipientAccountID
	fSharedEventID
	fVPCEndpointID
	fInsightEventSource
	fInsightEventName
	numTextFields

	fEventTime = iota - 1 // values below are not laid out as text
	fReadOnly
	fManagementEvent
	fMFAAuthenticated
	fRequestParameters
	fResponseElements
	fAdditionalEventData
	fResources
	numFields
)

// span is where a value lies in the record: [start, end), empty if absent;
// escaped if it has backslash escapes.
type span struct {
	start, end int32
	escaped    bool
}

// recordParser finds the mapped values of one record in a single pass that
// also validates the whole record.
type recordParser struct {
	b          []byte
	i          int
	start, end int // the record object within b
	flags      uint8
	depth      int // objects open around p.i
	spans      [numFields]span
	kbuf       [64]byte // unquoted keys
	// top collects the record's top-level members (members.go), with
	// offsets into b; key is the Member.Key of the member being read, and
	// longKey says a key was too long for Member.KeyLen.
	top     []Member
	key     uint8
	longKey bool
}

var errNotObject = errors.New("record is not a JSON object")

func (p *recordParser) parse(raw []byte) error {
	if len(raw) > math.MaxInt32 {
		return errors.New("record larger than 2 GiB") // spans are int32
	}
	p.b = raw
	p.skipSpace()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		if _, _, err := scanValue(p.b, true); err != nil {
			return fmt.Errorf("record is not valid JSON: %w", err)
		}
		return errNotObject
	}
	p.start = p.i
	if err := p.object(inRecord); err != nil {
		return fmt.Errorf("record is not valid JSON: %w", err)
	}
	p.end = p.i
	p.skipSpace()
	if p.i < len(p.b) {
		return fmt.Errorf("record is not valid JSON: data after the object at offset %d", p.i)
	}
	return nil
}

// parsePrefix parses the record object that b begins with ('{' at b[0]),
// and returns its length; what follows it is not looked at. It is how a
// Decoder finds a record's end and its fields in one pass. Its error only
// says that b holds no complete, valid record within the depth limit:
// the caller finds out why with scanValue.
func (p *recordParser) parsePrefix(b []byte) (int, error) {
	if len(b) > math.MaxInt32 {
		b = b[:math.MaxInt32]
	}
	p.b = b
	if err := p.object(inRecord); err != nil {
		return 0, err
	}
	p.end = p.i
	return p.i, nil
}

// Objects that Normalize looks into.
const (
	inRecord = iota
	inIdentity
	inSessionContext
	inSessionIssuer
	inAttributes
	inInsight
)

// member consumes the value of the member key of an object of kind level.
func (p *recordParser) member(level int, key []byte) error {
	switch level {
	case inRecord:
		switch string(key) {
		case "eventID":
			return p.take(fEventID)
		case "eventTime":
			return p.take(fEventTime)
		case "eventVersion":
			return p.take(fEventVersion)
		case "eventSource":
			return p.take(fEventSource)
		case "eventName":
			return p.take(fEventName)
		case "eventType":
			return p.take(fEventType)
		case "eventCategory":
			return p.take(fEventCategory)
		case "awsRegion":
			return p.take(fAWSRegion)
		case "sourceIPAddress":
			return p.take(fSourceIPAddress)
		case "userAgent":
			return p.take(fUserAgent)
		case "errorCode":
			return p.take(fErrorCode)
		case "errorMessage":
			return p.take(fErrorMessage)
		case "requestID":
			return p.take(fRequestID)
		case "readOnly":
			return p.take(fReadOnly)
		case "managementEvent":
			return p.take(fManagementEvent)
		case "recipientAccountId":
			return p.take(fRecipientAccountID)
		case "sharedEventID":
			return p.take(fSharedEventID)
		case "vpcEndpointId":
			return p.take(fVPCEndpointID)
		case "requestParameters":
			return p.take(fRequestParameters)
		case "responseElements":
			return p.take(fResponseElements)
		case "additionalEventData":
			return p.take(fAdditionalEventData)
		case "resources":
			return p.take(fResources)
		case "userIdentity":
			// A later duplicate replaces the whole identity, as in jsonb.
			for f := fIdentityType; f <= fInvokedBy; f++ {
				p.spans[f] = span{}
			}
			p.spans[fMFAAuthenticated] = span{}
			err := p.descend(inIdentity)
			p.key = keyUserIdentity
			return err
		case "insightDetails":
			p.spans[fInsightEventSource], p.spans[fInsightEventName] = span{}, span{}
			err := p.descend(inInsight)
			p.key = keyInsightDetails
			return err
		}
	case inIdentity:
		switch string(key) {
		case "type":
			return p.take(fIdentityType)
		case "arn":
			return p.take(fIdentityARN)
		case "accountId":
			return p.take(fIdentityAccountID)
		case "principalId":
			return p.take(fIdentityPrincipalID)
		case "accessKeyId":
			return p.take(fIdentityAccessKeyID)
		case "userName":
			return p.take(fIdentityUserName)
		case "invokedBy":
			return p.take(fInvokedBy)
		case "sessionContext":
			p.spans[fSessionIssuerARN], p.spans[fMFAAuthenticated] = span{}, span{}
			return p.descend(inSessionContext)
		}
	case inSessionContext:
		switch string(key) {
		case "sessionIssuer":
			p.spans[fSessionIssuerARN] = span{}
			return p.descend(inSessionIssuer)
		case "attributes":
			p.spans[fMFAAuthenticated] = span{}
			return p.descend(inAttributes)
		}
	case inSessionIssuer:
		if string(key) == "arn" {
			return p.take(fSessionIssuerARN)
		}
	case inAttributes:
		if string(key) == "mfaAuthenticated" {
			return p.take(fMFAAuthenticated)
		}
	case inInsight:
		switch string(key) {
		case "eventSource":
			return p.take(fInsightEventSource)
		case "eventName":
			return p.take(fInsightEventName)
		}
	}
	return p.skip()
}

func (p *recordParser) skipSpace() {
	for p.i < len(p.b) && isSpace[p.b[p.i]] {
		p.i++
	}
}

// object walks the object at p.i, of kind level, passing each member to
// p.member.
func (p *recordParser) object(level int) error {
	p.depth++
	err := p.members(level)
	p.depth--
	return err
}

func (p *recordParser) members(level int) error {
	p.i++ // '{'
	for first := true; ; first = false {
		p.skipSpace()
		if p.i >= len(p.b) {
			return &syntaxError{msg: "unexpected end of JSON", off: p.i}
		}
		switch c := p.b[p.i]; {
		case c == '}' && first:
			p.i++
			return nil
		case !first && c == ',':
			p.i++
			p.skipSpace()
		case !first && c == '}':
			p.i++
			return nil
		case !first:
			return &syntaxError{msg: fmt.Sprintf("invalid character %q after an object member", c), off: p.i}
		}
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return &syntaxError{msg: "expected a key", off: p.i}
		}
		n, flags, err := scanString(p.b[p.i+1:], true)
		if err != nil {
			return shiftErr(err, p.i+1)
		}
		p.flags |= flags
		key := p.b[p.i+1 : p.i+n]
		if flags&flagEscape != 0 {
			key = appendUnquoted(p.kbuf[:0], key)
		}
		k0 := p.i + 1
		p.i += 1 + n
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return &syntaxError{msg: "expected ':' after a key", off: p.i}
		}
		p.i++
		p.skipSpace()
		v0 := p.i
		p.key = 0
		if err := p.member(level, key); err != nil {
			return err
		}
		if level == inRecord {
			klen := n - 1
			p.longKey = p.longKey || klen > math.MaxUint16
			p.top = append(p.top, Member{
				KeyStart: int32(k0), ValueStart: int32(v0), ValueEnd: int32(p.i),
				KeyLen: uint16(klen), Key: p.key, KeyEscaped: flags&flagEscape != 0,
			})
		}
	}
}

// skip validates and passes over the value at p.i.
func (p *recordParser) skip() error {
	n, flags, err := scanValueDepth(p.b[p.i:], true, MaxRecordDepth-p.depth)
	if err != nil {
		return shiftErr(err, p.i)
	}
	p.flags |= flags
	p.i += n
	return nil
}

// take records where the value at p.i lies, then passes over it.
func (p *recordParser) take(f int) error {
	n, flags, err := scanValueDepth(p.b[p.i:], true, MaxRecordDepth-p.depth)
	if err != nil {
		return shiftErr(err, p.i)
	}
	p.flags |= flags
	p.spans[f] = span{int32(p.i), int32(p.i + n), flags&flagEscape != 0}
	p.key = uint8(f + 1)
	p.i += n
	return nil
}

// descend walks the value at p.i as an object of kind level if it is an
// object, and skips it otherwise.
func (p *recordParser) descend(level int) error {
	if p.i < len(p.b) && p.b[p.i] == '{' {
		return p.object(level)
	}
	return p.skip()
}

// value returns the raw JSON of field f, or nil if it is absent.
func (p *recordParser) value(f int) []byte {
	s := p.spans[f]
	return p.b[s.start:s.end]
}

// event builds the Event from the spans found by parse.
func (p *recordParser) event(bucket, key string, a *arena) (Event, error) {
	t, err := parseEventTime(p.value(fEventTime))
	if err != nil {
		return Event{}, err
	}

	// All text goes into one string; fields are substrings of it.
	var stack [1024]byte
	text := stack[:0]
	var ends [numTextFields]int
	for f := range numTextFields {
		text = appendText(text, p.value(f), p.spans[f].escaped)
		ends[f] = len(text)
	}
	// One allocation (from the arena, if any) holds the fields' text and
	// the copy of the record.
	mem := a.alloc(len(text) + p.end - p.start)
	copy(mem, text)
	all := bytesString(mem[:len(text)])
	field := func(f int) string {
		start := 0
		if f > 0 {
			start = ends[f-1]
		}
		return all[start:ends[f]]
	}

	// One copy of the record backs Record and the JSON columns.
	rec := mem[len(text):]
	copy(rec, p.b[p.start:p.end])
	column := func(f int) []byte {
		s := p.spans[f]
		if s.end == 0 {
			return nil
		}
		v := rec[int(s.start)-p.start : int(s.end)-p.start : int(s.end)-p.start]
		if string(v) == "null" {
			return nil
		}
		return v
	}

	var bools boolSet
	ev := Event{
		EventID:                 field(fEventID),
		EventTime:               t,
		EventVersion:            field(fEventVersion),
		EventSource:             field(fEventSource),
		EventName:               field(fEventName),
		EventType:               field(fEventType),
		EventCategory:           field(fEventCategory),
		AWSRegion:               field(fAWSRegion),
		SourceIPAddress:         field(fSourceIPAddress),
		UserAgent:               field(fUserAgent),
		UserIdentityType:        field(fIdentityType),
		UserIdentityARN:         field(fIdentityARN),
		UserIdentityAccountID:   field(fIdentityAccountID),
		UserIdentityPrincipalID: field(fIdentityPrincipalID),
		UserIdentityAccessKeyID: field(fIdentityAccessKeyID),
		UserIdentityUserName:    field(fIdentityUserName),
		SessionIssuerARN:        field(fSessionIssuerARN),
		SessionMFAAuthenticated: bools.parse(0, p.value(fMFAAuthenticated)),
		InvokedBy:               field(fInvokedBy),
		ErrorCode:               field(fErrorCode),
		ErrorMessage:            field(fErrorMessage),
		RequestID:               field(fRequestID),
		ReadOnly:                bools.parse(1, p.value(fReadOnly)),
		ManagementEvent:         bools.parse(2, p.value(fManagementEvent)),
		RecipientAccountID:      field(fRecipientAccountID),
		SharedEventID:           field(fSharedEventID),
		VPCEndpointID:           field(fVPCEndpointID),
		RequestParameters:       column(fRequestParameters),
		ResponseElements:        column(fResponseElements),
		AdditionalEventData:     column(fAdditionalEventData),
		Resources:               column(fResources),
		Record:                  rec,
		Layout:                  p.layout(a),
		S3Bucket:                bucket,
		S3Key:                   key,
	}
	if ev.EventType == "AwsCloudTrailInsight" {
		if s := field(fInsightEventSource); s != "" {
			ev.EventSource = s
		}
		if s := field(fInsightEventName); s != "" {
			ev.EventName = s
		}
	}
	if ev.EventID == "" || p.b[p.spans[fEventID].start] != '"' {
		sum := sha256.Sum256(rec)
		ev.EventID = SyntheticIDPrefix + hex.EncodeToString(sum[:])
	}
	return ev, nil
}

// appendText appends the text of a JSON value: a string's contents, the
// text of a number or boolean, nothing for anything else. A string without
// escapes is copied as it is (the record is valid UTF-8 by now).
func appendText(dst, v []byte, escaped bool) []byte {
	if len(v) == 0 {
		return dst
	}
	switch c := v[0]; {
	case c == '"' && !escaped:
		return append(dst, v[1:len(v)-1]...)
	case c == '"':
		return appendUnquoted(dst, v[1:len(v)-1])
	case c == 't' || c == 'f' || c == '-' || ('0' <= c && c <= '9'):
		return append(dst, v...)
	}
	return dst
}

// appendUnquoted appends the contents of a JSON string (without its quotes,
// as checked by scanString) to dst, decoding escapes. NUL, unpaired
// surrogates and invalid UTF-8 become U+FFFD.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' && c < utf8.RuneSelf {
			j := i + 1
			for j < len(s) && s[j] != '\\' && s[j] < utf8.RuneSelf {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		if c != '\\' {
			n, ok := validRune(s[i:])
			if n == 0 {
				n = 1
			}
			if ok {
				dst = append(dst, s[i:i+n]...)
			} else {
				dst = append(dst, "\uFFFD"...)
			}
			i += n
			continue
		}
		if i+1 >= len(s) {
			return append(dst, "\uFFFD"...)
		}
		switch e := s[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := rune(0), false
			if i+6 <= len(s) {
				r, ok = hex4(s[i+2 : i+6])
			}
			if !ok {
				return append(dst, "\uFFFD"...)
			}
			i += 6
			if 0xD800 <= r && r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if lo, ok := hex4(s[i+2 : i+6]); ok && 0xDC00 <= lo && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				}
			}
			if r == 0 || (0xD800 <= r && r < 0xE000) {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

// boolSet gives an Event's booleans one allocation between them.
type boolSet struct{ vals *[3]bool }

// parse stores the boolean v in slot i and returns a pointer to it, or nil.
func (s *boolSet) parse(i int, v []byte) *bool {
	b, ok := parseBool(v)
	if !ok {
		return nil
	}
	if s.vals == nil {
		s.vals = new([3]bool)
	}
	s.vals[i] = b
	return &s.vals[i]
}

// parseBool reads true, false, or a string "true" or "false" in any case.
func parseBool(v []byte) (value, ok bool) {
	switch {
	case string(v) == "true":
		return true, true
	case string(v) == "false":
		return false, true
	case len(v) > 2 && v[0] == '"':
		s := string(v[1 : len(v)-1])
		switch {
		case strings.EqualFold(s, "true"):
			return true, true
		case strings.EqualFold(s, "false"):
			return false, true
		}
	}
	return false, false
}

// parseEventTime parses eventTime's raw JSON value; see Normalize.
func parseEventTime(v []byte) (time.Time, error) {
	if len(v) == 0 || string(v) == "null" {
		return time.Time{}, errors.New("eventTime missing")
	}
	if v[0] == '"' {
		s := v[1 : len(v)-1]
		var buf [64]byte
		if len(s) < len(buf) && containsByte(s, '\\') {
			s = appendUnquoted(buf[:0], s)
		}
		if t, ok := parseTime(s); ok {
			return t, nil
		}
	}
	const maxShown = 64
	if len(v) > maxShown {
		v = append(v[:maxShown:maxShown], "..."...)
	}
	return time.Time{}, fmt.Errorf("eventTime unparseable: %s", strings.ToValidUTF8(string(v), "\uFFFD"))
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// parseTime parses "YYYY-MM-DD(T|t| )HH:MM:SS[.f+][Z|z|±HH:MM]", where the
// zone may be left out only after a space (then it is UTC). Digits past
// nanoseconds are dropped.
func parseTime(s []byte) (time.Time, bool) {
	num := func(b []byte) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	space := s[10] == ' '
	if !space && s[10] != 'T' && s[10] != 't' {
		return time.Time{}, false
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	hour, ok4 := num(s[11:13])
	minute, ok5 := num(s[14:16])
	sec, ok6 := num(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	s = s[19:]
	nsec := 0
	if len(s) > 0 && s[0] == '.' {
		k := 1
		for k < len(s) && '0' <= s[k] && s[k] <= '9' {
			if k <= 9 {
				nsec = nsec*10 + int(s[k]-'0')
			}
			k++
		}
		if k == 1 {
			return time.Time{}, false
		}
		for d := k; d <= 9; d++ {
			nsec *= 10
		}
		s = s[k:]
	}
	offset := 0
	switch {
	case len(s) == 0:
		if !space {
			return time.Time{}, false
		}
	case len(s) == 1 && (s[0] == 'Z' || s[0] == 'z'):
	case len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':':
		oh, ok1 := num(s[1:3])
		om, ok2 := num(s[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if s[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
