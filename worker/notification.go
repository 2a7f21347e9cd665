package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ObjectRef names one S3 object a notification announces.
type ObjectRef struct {
	Bucket string
	Key    string
	// Size is the object's size in bytes, 0 when the notification does not
	// say (CloudTrail's own notifications never do).
	Size int64
}

// NotificationKind says what the caller should do with a parsed notification.
// The zero value is not a valid kind: ParseNotification returns it only with
// an error.
type NotificationKind int

const (
	// NotificationObjects announces one or more objects to fetch.
	NotificationObjects NotificationKind = iota + 1
	// NotificationTest is a message sent when a notification is configured
	// (s3:TestEvent, CloudTrail's validation message). It names no object;
	// the caller deletes it.
	NotificationTest
	// NotificationIgnored is a well-formed S3 notification about something
	// other than a new object (ObjectRemoved, ObjectRestore, tagging, ...).
	// It names no object to fetch; the caller deletes it. Such messages mean
	// the bucket sends more event types than pgtrail needs.
	NotificationIgnored
)

// String returns "objects", "test" or "ignored".
func (k NotificationKind) String() string {
	switch k {
	case NotificationObjects:
		return "objects"
	case NotificationTest:
		return "test"
	case NotificationIgnored:
		return "ignored"
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText makes a kind read as its name in JSON and in logs.
func (k NotificationKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Notification is one SQS message body that ParseNotification understood.
type Notification struct {
	Kind NotificationKind
	// Format names the shape the body had, for logs and metrics: one of
	// "cloudtrail", "s3-event", "eventbridge", "s3-test" and
	// "cloudtrail-test", with "-sns" appended when the body was wrapped in
	// an SNS envelope (so "cloudtrail-sns" is CloudTrail's usual delivery,
	// and "cloudtrail-test-sns" its usual validation message).
	Format string
	// Objects lists the objects to fetch in message order, duplicates
	// removed. It is empty unless Kind is NotificationObjects.
	Objects []ObjectRef
}

const (
	// maxNotificationObjects bounds the objects one message may announce.
	// CloudTrail lists a handful of keys per message; more than this is not
	// a notification pgtrail should trust.
	maxNotificationObjects = 10000
	// maxNotificationBytes is the largest body SQS delivers (1 MiB).
	maxNotificationBytes = 1 << 20
	// maxNotificationQuote bounds the bytes of the body, or of a value from
	// it, that an error message quotes.
	maxNotificationQuote = 100

	// cloudTrailValidationMessage is the whole SNS Message CloudTrail
	// publishes when a trail's topic is set.
	cloudTrailValidationMessage = "CloudTrail validation message."
	snsFormatSuffix             = "-sns"
)

// ParseNotification reads one SQS message body. An error means the body is
// not a notification pgtrail understands: the caller must NOT delete the
// message (it goes to the DLQ through the redrive policy).
//
// It accepts, directly or inside an SNS envelope (Type "Notification", the
// body as the Message string):
//   - CloudTrail's {"s3Bucket": ..., "s3ObjectKey": [...]}; keys are used
//     as given;
//   - S3 event notifications {"Records": [...]}; keys are form-decoded
//     ("+" is a space, "%2B" a plus); records other than ObjectCreated:*
//     are skipped, and a message of only such records is NotificationIgnored;
//   - EventBridge events from aws.s3; "Object Created" names an object
//     (its key is form-decoded too), the other S3 detail types are
//     NotificationIgnored;
//   - s3:TestEvent and CloudTrail's validation message, as NotificationTest.
//
// Member names are matched exactly, not case-insensitively as encoding/json
// matches struct fields, and a body that has the members of two formats is
// rejected rather than guessed at.
func ParseNotification(body []byte) (Notification, error) {
	if len(body) > maxNotificationBytes {
		return Notification{}, fmt.Errorf("notification: body is %d bytes, more than SQS's %d", len(body), maxNotificationBytes)
	}
	n, err := parseNotificationBody(body, true)
	if err != nil {
		return Notification{}, fmt.Errorf("notification: %w", err)
	}
	return n, nil
}

// parseNotificationBody parses body as one of the formats; sns says whether
// an SNS envelope is allowed (it is not inside another).
func parseNotificationBody(body []byte, sns bool) (Notification, error) {
	if string(bytes.TrimSpace(body)) == cloudTrailValidationMessage {
		return Notification{Kind: NotificationTest, Format: "cloudtrail-test"}, nil
	}
	o, err := decodeJSONMembers(body)
	if err != nil {
		return Notification{}, unrecognizedBody(body, "not a JSON object")
	}

	type shape struct {
		name  string
		parse func(jsonMembers) (Notification, error)
	}
	var found []shape
	if o.has("Type") || o.has("TopicArn") {
		found = append(found, shape{"sns", parseSNSEnvelope})
	}
	if o.has("s3Bucket") || o.has("s3ObjectKey") {
		found = append(found, shape{"cloudtrail", parseCloudTrailMessage})
	}
	if o.has("Records") {
		found = append(found, shape{"s3-event", parseS3EventMessage})
	}
	if o.has("detail-type") {
		found = append(found, shape{"eventbridge", parseEventBridgeMessage})
	}
	if o.has("Event") {
		found = append(found, shape{"s3-test", parseS3TestEvent})
	}
	switch {
	case len(found) == 0:
		return Notification{}, unrecognizedBody(body, "no member of a known format")
	case len(found) > 1:
		return Notification{}, unrecognizedBody(body, "members of both "+found[0].name+" and "+found[1].name)
	case found[0].name == "sns" && !sns:
		return Notification{}, errors.New("sns: envelope inside an SNS envelope")
	}
	n, err := found[0].parse(o)
	if err != nil {
		return Notification{}, fmt.Errorf("%s: %w", found[0].name, err)
	}
	return n, nil
}

// parseSNSEnvelope unwraps an SNS envelope and parses its Message.
func parseSNSEnvelope(o jsonMembers) (Notification, error) {
	typ, err := o.str("Type")
	if err != nil {
		return Notification{}, err
	}
	if typ != "Notification" {
		return Notification{}, fmt.Errorf("type %s is not Notification", quoteExcerpt(typ))
	}
	topic, err := o.str("TopicArn")
	if err != nil {
		return Notification{}, err
	}
	if topic == "" {
		return Notification{}, errors.New("TopicArn is missing or empty")
	}
	msg, err := o.str("Message")
	if err != nil {
		return Notification{}, err
	}
	if msg == "" {
		return Notification{}, errors.New("Message is missing or empty")
	}
	n, err := parseNotificationBody([]byte(msg), false)
	if err != nil {
		return Notification{}, fmt.Errorf("message: %w", err)
	}
	n.Format += snsFormatSuffix
	return n, nil
}

// parseCloudTrailMessage reads CloudTrail's {"s3Bucket", "s3ObjectKey": [...]}.
// The keys are plain object keys, not URL-encoded.
func parseCloudTrailMessage(o jsonMembers) (Notification, error) {
	bucket, err := o.str("s3Bucket")
	if err != nil {
		return Notification{}, err
	}
	if bucket == "" {
		return Notification{}, errors.New("s3Bucket is missing or empty")
	}
	items, err := o.array("s3ObjectKey")
	if err != nil {
		return Notification{}, err
	}
	if len(items) == 0 {
		return Notification{}, errors.New("s3ObjectKey is empty")
	}
	if len(items) > maxNotificationObjects {
		return Notification{}, fmt.Errorf("s3ObjectKey lists %d keys, more than %d", len(items), maxNotificationObjects)
	}
	var objs objectRefSet
	for i, raw := range items {
		var key string
		if isJSONNull(raw) || json.Unmarshal(raw, &key) != nil {
			return Notification{}, fmt.Errorf("s3ObjectKey[%d] is not a string", i)
		}
		if key == "" {
			return Notification{}, fmt.Errorf("s3ObjectKey[%d] is empty", i)
		}
		objs.add(ObjectRef{Bucket: bucket, Key: key})
	}
	return Notification{Kind: NotificationObjects, Format: "cloudtrail", Objects: objs.list}, nil
}

// s3EventIgnoredNames are the eventName prefixes of S3 event records that name
// no new object. Any other name that is not ObjectCreated:* is an error.
var s3EventIgnoredNames = []string{
	"ObjectRemoved:", "ObjectRestore:", "ObjectTagging:", "ObjectAcl:",
	"LifecycleExpiration:", "LifecycleTransition", "IntelligentTiering",
	"Replication:", "ReducedRedundancyLostObject",
}

// s3EventIgnored reports whether eventName is a known S3 event that names no
// new object.
func s3EventIgnored(eventName string) bool {
	for _, prefix := range s3EventIgnoredNames {
		if strings.HasPrefix(eventName, prefix) {
			return true
		}
	}
	return false
}

// parseS3EventMessage reads an S3 event notification {"Records": [...]}.
func parseS3EventMessage(o jsonMembers) (Notification, error) {
	records, err := o.array("Records")
	if err != nil {
		return Notification{}, err
	}
	if len(records) == 0 {
		return Notification{}, errors.New("Records is empty")
	}
	if len(records) > maxNotificationObjects {
		return Notification{}, fmt.Errorf("Records has %d records, more than %d", len(records), maxNotificationObjects)
	}
	var objs objectRefSet
	for i, raw := range records {
		ref, created, err := parseS3EventRecord(raw)
		if err != nil {
			return Notification{}, fmt.Errorf("record %d: %w", i, err)
		}
		if created {
			objs.add(ref)
		}
	}
	if len(objs.list) == 0 {
		return Notification{Kind: NotificationIgnored, Format: "s3-event"}, nil
	}
	return Notification{Kind: NotificationObjects, Format: "s3-event", Objects: objs.list}, nil
}

// parseS3EventRecord reads one record of an S3 event. Every record must be
// well-formed, created or not; created reports an ObjectCreated:* record.
func parseS3EventRecord(raw json.RawMessage) (ref ObjectRef, created bool, err error) {
	rec, err := decodeJSONMembers(raw)
	if err != nil {
		return ObjectRef{}, false, errors.New("not a JSON object")
	}
	source, err := rec.str("eventSource")
	if err != nil {
		return ObjectRef{}, false, err
	}
	if source != "aws:s3" {
		return ObjectRef{}, false, fmt.Errorf("eventSource %s is not aws:s3", quoteExcerpt(source))
	}
	// AWS asks consumers to compare the major version for equality.
	version, err := rec.str("eventVersion")
	if err != nil {
		return ObjectRef{}, false, err
	}
	if major, _, _ := strings.Cut(version, "."); major != "2" {
		return ObjectRef{}, false, fmt.Errorf("eventVersion %s is not 2.x", quoteExcerpt(version))
	}
	name, err := rec.str("eventName")
	if err != nil {
		return ObjectRef{}, false, err
	}
	created = strings.HasPrefix(name, "ObjectCreated:")
	if !created && !s3EventIgnored(name) {
		return ObjectRef{}, false, fmt.Errorf("eventName %s is not a known S3 event", quoteExcerpt(name))
	}
	s3, err := rec.object("s3")
	if err != nil {
		return ObjectRef{}, false, err
	}
	bucket, err := s3.object("bucket")
	if err != nil {
		return ObjectRef{}, false, fmt.Errorf("s3: %w", err)
	}
	object, err := s3.object("object")
	if err != nil {
		return ObjectRef{}, false, fmt.Errorf("s3: %w", err)
	}
	ref, err = s3EventObjectRef(bucket, object)
	if err != nil {
		return ObjectRef{}, false, fmt.Errorf("s3: %w", err)
	}
	return ref, created, nil
}

// eventBridgeIgnoredTypes are the detail types S3 sends to EventBridge that
// name no new object.
var eventBridgeIgnoredTypes = map[string]bool{
	"Object Deleted":               true,
	"Object Restore Initiated":     true,
	"Object Restore Completed":     true,
	"Object Restore Expired":       true,
	"Object Tags Added":            true,
	"Object Tags Deleted":          true,
	"Object ACL Updated":           true,
	"Object Storage Class Changed": true,
	"Object Access Tier Changed":   true,
}

// parseEventBridgeMessage reads an S3 event delivered by EventBridge. AWS's
// documentation does not say whether its key is encoded; it is form-decoded
// like an S3 event's, as AWS's own consumers do (Lambda Powertools'
// S3EventBridgeNotificationObject.key, Data Prepper's
// S3EventBridgeNotification getUrlDecodedKey). Keys CloudTrail writes hold
// neither "+" nor "%", so only a trail prefix with them could be misread.
func parseEventBridgeMessage(o jsonMembers) (Notification, error) {
	source, err := o.str("source")
	if err != nil {
		return Notification{}, err
	}
	if source != "aws.s3" {
		return Notification{}, fmt.Errorf("source %s is not aws.s3", quoteExcerpt(source))
	}
	detailType, err := o.str("detail-type")
	if err != nil {
		return Notification{}, err
	}
	created := detailType == "Object Created"
	if !created && !eventBridgeIgnoredTypes[detailType] {
		return Notification{}, fmt.Errorf("detail-type %s is not an S3 object event", quoteExcerpt(detailType))
	}
	detail, err := o.object("detail")
	if err != nil {
		return Notification{}, err
	}
	bucket, err := detail.object("bucket")
	if err != nil {
		return Notification{}, fmt.Errorf("detail: %w", err)
	}
	object, err := detail.object("object")
	if err != nil {
		return Notification{}, fmt.Errorf("detail: %w", err)
	}
	ref, err := s3EventObjectRef(bucket, object)
	if err != nil {
		return Notification{}, fmt.Errorf("detail: %w", err)
	}
	if !created {
		return Notification{Kind: NotificationIgnored, Format: "eventbridge"}, nil
	}
	return Notification{Kind: NotificationObjects, Format: "eventbridge", Objects: []ObjectRef{ref}}, nil
}

// parseS3TestEvent reads the s3:TestEvent S3 sends when a notification is set.
func parseS3TestEvent(o jsonMembers) (Notification, error) {
	service, err := o.str("Service")
	if err != nil {
		return Notification{}, err
	}
	event, err := o.str("Event")
	if err != nil {
		return Notification{}, err
	}
	if service != "Amazon S3" || event != "s3:TestEvent" {
		return Notification{}, fmt.Errorf("event %s from %s is not s3:TestEvent from Amazon S3", quoteExcerpt(event), quoteExcerpt(service))
	}
	return Notification{Kind: NotificationTest, Format: "s3-test"}, nil
}

// s3EventObjectRef reads the bucket name, the form-encoded key and the
// optional size from the bucket and object members of an S3 or EventBridge
// event.
func s3EventObjectRef(bucket, object jsonMembers) (ObjectRef, error) {
	name, err := bucket.str("name")
	if err != nil {
		return ObjectRef{}, fmt.Errorf("bucket: %w", err)
	}
	if name == "" {
		return ObjectRef{}, errors.New("bucket: name is missing or empty")
	}
	encoded, err := object.str("key")
	if err != nil {
		return ObjectRef{}, fmt.Errorf("object: %w", err)
	}
	key, err := decodeS3EventKey(encoded)
	if err != nil {
		return ObjectRef{}, fmt.Errorf("object: %w", err)
	}
	size, err := object.size("size")
	if err != nil {
		return ObjectRef{}, fmt.Errorf("object: %w", err)
	}
	return ObjectRef{Bucket: name, Key: key, Size: size}, nil
}

// decodeS3EventKey decodes an S3 event's object key, which is form-encoded:
// "+" is a space and "%2B" a plus.
func decodeS3EventKey(encoded string) (string, error) {
	if encoded == "" {
		return "", errors.New("key is missing or empty")
	}
	key, err := url.QueryUnescape(encoded)
	if err != nil {
		return "", fmt.Errorf("key %s is not form-encoded", quoteExcerpt(encoded))
	}
	if !utf8.ValidString(key) {
		return "", fmt.Errorf("key %s does not decode to UTF-8", quoteExcerpt(encoded))
	}
	return key, nil
}

// objectRefSet collects object references in order, without duplicates.
type objectRefSet struct {
	list []ObjectRef
	seen map[[2]string]bool
}

func (s *objectRefSet) add(ref ObjectRef) {
	id := [2]string{ref.Bucket, ref.Key}
	if s.seen[id] {
		return
	}
	if s.seen == nil {
		s.seen = make(map[[2]string]bool)
	}
	s.seen[id] = true
	s.list = append(s.list, ref)
}

// jsonMembers holds a JSON object's members by their exact names.
type jsonMembers map[string]json.RawMessage

// decodeJSONMembers decodes a JSON object; null, arrays and scalars are errors.
func decodeJSONMembers(data []byte) (jsonMembers, error) {
	var o jsonMembers
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, errors.New("null")
	}
	return o, nil
}

func (o jsonMembers) has(name string) bool {
	_, ok := o[name]
	return ok
}

// str returns a string member; a missing or null member is "".
func (o jsonMembers) str(name string) (string, error) {
	raw, ok := o[name]
	if !ok || isJSONNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// object returns an object member, which must be present.
func (o jsonMembers) object(name string) (jsonMembers, error) {
	raw, ok := o[name]
	if !ok || isJSONNull(raw) {
		return nil, fmt.Errorf("%s is missing", name)
	}
	v, err := decodeJSONMembers(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not an object", name)
	}
	return v, nil
}

// array returns an array member, which must be present.
func (o jsonMembers) array(name string) ([]json.RawMessage, error) {
	raw, ok := o[name]
	if !ok || isJSONNull(raw) {
		return nil, fmt.Errorf("%s is missing", name)
	}
	var v []json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s is not an array", name)
	}
	return v, nil
}

// size returns a byte count member; a missing or null member is 0.
func (o jsonMembers) size(name string) (int64, error) {
	raw, ok := o[name]
	if !ok || isJSONNull(raw) {
		return 0, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil || n < 0 {
		return 0, fmt.Errorf("%s %s is not a byte count", name, quoteExcerpt(string(raw)))
	}
	return n, nil
}

func isJSONNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// unrecognizedBody is the error for a body of no known format.
func unrecognizedBody(body []byte, why string) error {
	return fmt.Errorf("unrecognized body (%s): %s", why, quoteExcerpt(string(body)))
}

// quoteExcerpt quotes s for an error message, cut to maxNotificationQuote
// bytes.
func quoteExcerpt(s string) string {
	if len(s) <= maxNotificationQuote {
		return strconv.Quote(s)
	}
	cut := maxNotificationQuote
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
