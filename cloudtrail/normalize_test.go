package cloudtrail

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var updateNormalize = flag.Bool("update-normalize", false, "rewrite the golden files in testdata/records")

// corpusCounts is the table in the corpus README, counted with a plain JSON
// reader, plus the eventTimes that are present but unparseable.
var corpusCounts = map[string]struct {
	objects, records, distinctIDs, noID, noTime, badTime int
}{
	"stratus-red-team":       {35, 310, 310, 0, 0, 0},
	"otrf-security-datasets": {2, 103, 103, 0, 103, 0},
	"panther-analysis":       {139, 432, 126, 49, 13, 2}, // "..." and "redacted"
	"plaso":                  {1, 6, 6, 0, 0, 0},
	"streamalert":            {2, 2, 2, 0, 0, 1}, // "eventTime"
	"trailscraper":           {1, 2, 2, 0, 0, 0},
}

// TestNormalizeCorpus decodes and normalizes every record of the corpus,
// checks each against the encoding/json oracle, the counts against the
// README, and a summary line per record against testdata/records.
func TestNormalizeCorpus(t *testing.T) {
	t.Parallel()
	root := filepath.Join(corpusDir(t), "s3")
	type tally struct {
		objects, records, noID, noTime, badTime int
		ids                                     map[string]bool
	}
	tallies := map[string]*tally{}
	golden := map[string]*bytes.Buffer{}

	for _, path := range corpusObjects(t) {
		rel, _ := filepath.Rel(root, path)
		source, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		tl := tallies[source]
		if tl == nil {
			tl = &tally{ids: map[string]bool{}}
			tallies[source], golden[source] = tl, &bytes.Buffer{}
		}
		tl.objects++
		out := golden[source]
		fmt.Fprintf(out, "# %s\n", filepath.ToSlash(rel))

		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDecoder(f, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			raw, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			checkRecord(t, raw)
			tl.records++

			// Independent counts, as the README made them.
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if id, ok := m["eventID"].(string); ok {
				tl.ids[id] = true
			} else {
				tl.noID++
			}

			ev, err := Normalize(raw, "bucket", rel)
			want, wantErr := refNormalize(raw, "bucket", rel)
			if (err == nil) != (wantErr == nil) || (err == nil && !eventsEqual(ev, want)) {
				t.Errorf("%s record %d: Normalize and the oracle differ:\n%+v, %v\n%+v, %v", rel, i, ev, err, want, wantErr)
			}
			switch {
			case err == nil:
				fmt.Fprintf(out, "%d %s\n", i, summarize(ev))
			case err.Error() == "eventTime missing":
				tl.noTime++
				fmt.Fprintf(out, "%d REJECT %s\n", i, err)
			case strings.HasPrefix(err.Error(), "eventTime unparseable: "):
				tl.badTime++
				fmt.Fprintf(out, "%d REJECT %s\n", i, err)
			default:
				t.Errorf("%s record %d: %v", rel, i, err)
			}
		}
		f.Close()
	}

	for source, want := range corpusCounts {
		tl := tallies[source]
		if tl == nil {
			t.Errorf("%s: no objects", source)
			continue
		}
		got := [...]int{tl.objects, tl.records, len(tl.ids), tl.noID, tl.noTime, tl.badTime}
		if got != [...]int{want.objects, want.records, want.distinctIDs, want.noID, want.noTime, want.badTime} {
			t.Errorf("%s: objects, records, distinct IDs, without ID, without time, bad time = %v; want %+v", source, got, want)
		}
	}
	if len(tallies) != len(corpusCounts) {
		t.Errorf("sources %d, want %d", len(tallies), len(corpusCounts))
	}

	for source, out := range golden {
		checkGolden(t, filepath.Join("testdata", "records", source+".golden"), out.Bytes())
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateNormalize {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestNormalizeCorpus -update-normalize)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s line %d:\n got %s\nwant %s\n(run with -update-normalize if the change is intended)", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: %d lines, want %d (run with -update-normalize if the change is intended)", path, len(gl), len(wl))
	}
}

// summarize is one golden line: the Event's main non-empty fields, JSON
// columns as their type and length. (Every field of every record is also
// checked against refNormalize.)
func summarize(ev Event) string {
	var b strings.Builder
	b.WriteString(ev.EventID)
	b.WriteString(" ")
	b.WriteString(ev.EventTime.Format(time.RFC3339Nano))
	text := func(name, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%q", name, v)
		}
	}
	boolean := func(name string, v *bool) {
		if v != nil {
			fmt.Fprintf(&b, " %s=%v", name, *v)
		}
	}
	column := func(name string, v json.RawMessage) {
		if v != nil {
			kind := map[byte]string{'{': "object", '[': "array", '"': "string"}[v[0]]
			if kind == "" {
				kind = "scalar"
			}
			fmt.Fprintf(&b, " %s=%s/%d", name, kind, len(v))
		}
	}
	text("src", ev.EventSource)
	text("name", ev.EventName)
	text("type", ev.EventType)
	text("cat", ev.EventCategory)
	text("region", ev.AWSRegion)
	text("ip", ev.SourceIPAddress)
	text("id.type", ev.UserIdentityType)
	text("id.arn", ev.UserIdentityARN)
	text("id.account", ev.UserIdentityAccountID)
	text("id.user", ev.UserIdentityUserName)
	text("issuer", ev.SessionIssuerARN)
	boolean("mfa", ev.SessionMFAAuthenticated)
	text("invokedBy", ev.InvokedBy)
	text("err", ev.ErrorCode)
	boolean("ro", ev.ReadOnly)
	boolean("mgmt", ev.ManagementEvent)
	text("shared", ev.SharedEventID)
	text("vpce", ev.VPCEndpointID)
	column("params", ev.RequestParameters)
	column("resp", ev.ResponseElements)
	column("extra", ev.AdditionalEventData)
	column("resources", ev.Resources)
	fmt.Fprintf(&b, " record=%d", len(ev.Record))
	return b.String()
}

func eventsEqual(a, b Event) bool {
	return reflect.DeepEqual(a, b)
}

// refLayout finds a record's top-level members with encoding/json's
// tokenizer and its input offsets: the oracle of Normalize's Layout.
func refLayout(raw []byte) Layout {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if _, err := d.Token(); err != nil { // '{'
		return Layout{}
	}
	var l Layout
	l.Escaped = bytes.IndexByte(raw, '\\') >= 0
	for d.More() {
		before := int(d.InputOffset())
		tok, err := d.Token()
		if err != nil {
			return Layout{}
		}
		key := tok.(string)
		// The key's quote is the first one after the comma or brace.
		k0 := before + bytes.IndexByte(raw[before:], '"') + 1
		k1 := int(d.InputOffset()) - 1
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return Layout{}
		}
		v1 := int(d.InputOffset())
		v0 := v1 - len(v)
		m := Member{KeyStart: int32(k0), ValueStart: int32(v0), ValueEnd: int32(v1), KeyLen: uint16(k1 - k0),
			KeyEscaped: bytes.IndexByte(raw[k0:k1], '\\') >= 0}
		for i, k := range memberKeys {
			if k != "" && k == key {
				m.Key = uint8(i)
			}
		}
		l.Members = append(l.Members, m)
	}
	return l
}

// refNormalize is Normalize written plainly with encoding/json: the oracle
// that the hand-written extraction is checked against. raw must be a record
// as Decoder.Next returns it (repaired).
func refNormalize(raw []byte, bucket, key string) (Event, error) {
	raw = bytes.Trim(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '{' {
		return Event{}, errors.New("not an object")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return Event{}, err
	}
	obj := func(v json.RawMessage) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		if len(v) > 0 && v[0] == '{' {
			json.Unmarshal(v, &m)
		}
		return m
	}
	text := func(v json.RawMessage) string {
		if len(v) == 0 {
			return ""
		}
		switch v[0] {
		case '"':
			var s string
			json.Unmarshal(v, &s)
			return strings.ReplaceAll(s, "\x00", "\uFFFD")
		case '{', '[', 'n':
			return ""
		}
		return string(v)
	}
	boolean := func(v json.RawMessage) *bool {
		var x any
		json.Unmarshal(v, &x)
		if s, ok := x.(string); ok {
			x = map[string]any{"true": true, "false": false}[strings.ToLower(s)]
		}
		if b, ok := x.(bool); ok {
			return &b
		}
		return nil
	}
	column := func(v json.RawMessage) json.RawMessage {
		if len(v) == 0 || string(v) == "null" {
			return nil
		}
		return v
	}

	ts, ok := top["eventTime"]
	if !ok || string(ts) == "null" {
		return Event{}, errors.New("eventTime missing")
	}
	var s string
	if json.Unmarshal(ts, &s) != nil {
		return Event{}, errors.New("eventTime unparseable")
	}
	t, ok := refParseTime(s)
	if !ok {
		return Event{}, errors.New("eventTime unparseable")
	}

	id := obj(top["userIdentity"])
	sc := obj(id["sessionContext"])
	ev := Event{
		EventID:                 text(top["eventID"]),
		EventTime:               t,
		EventVersion:            text(top["eventVersion"]),
		EventSource:             text(top["eventSource"]),
		EventName:               text(top["eventName"]),
		EventType:               text(top["eventType"]),
		EventCategory:           text(top["eventCategory"]),
		AWSRegion:               text(top["awsRegion"]),
		SourceIPAddress:         text(top["sourceIPAddress"]),
		UserAgent:               text(top["userAgent"]),
		UserIdentityType:        text(id["type"]),
		UserIdentityARN:         text(id["arn"]),
		UserIdentityAccountID:   text(id["accountId"]),
		UserIdentityPrincipalID: text(id["principalId"]),
		UserIdentityAccessKeyID: text(id["accessKeyId"]),
		UserIdentityUserName:    text(id["userName"]),
		SessionIssuerARN:        text(obj(sc["sessionIssuer"])["arn"]),
		SessionMFAAuthenticated: boolean(obj(sc["attributes"])["mfaAuthenticated"]),
		InvokedBy:               text(id["invokedBy"]),
		ErrorCode:               text(top["errorCode"]),
		ErrorMessage:            text(top["errorMessage"]),
		RequestID:               text(top["requestID"]),
		ReadOnly:                boolean(top["readOnly"]),
		ManagementEvent:         boolean(top["managementEvent"]),
		RecipientAccountID:      text(top["recipientAccountId"]),
		SharedEventID:           text(top["sharedEventID"]),
		VPCEndpointID:           text(top["vpcEndpointId"]),
		RequestParameters:       column(top["requestParameters"]),
		ResponseElements:        column(top["responseElements"]),
		AdditionalEventData:     column(top["additionalEventData"]),
		Resources:               column(top["resources"]),
		Record:                  raw,
		Layout:                  refLayout(raw),
		S3Bucket:                bucket,
		S3Key:                   key,
	}
	if ev.EventType == "AwsCloudTrailInsight" {
		insight := obj(top["insightDetails"])
		if s := text(insight["eventSource"]); s != "" {
			ev.EventSource = s
		}
		if s := text(insight["eventName"]); s != "" {
			ev.EventName = s
		}
	}
	if v := top["eventID"]; ev.EventID == "" || v[0] != '"' {
		ev.EventID = refSyntheticID(raw)
	}
	return ev, nil
}

var refTimeRE = regexp.MustCompile(`^(\d{4}-\d\d-\d\d)([Tt ])(\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)?$`)

func refParseTime(s string) (time.Time, bool) {
	m := refTimeRE.FindStringSubmatch(s)
	if m == nil || (m[5] == "" && m[2] != " ") {
		return time.Time{}, false
	}
	frac, zone := m[4], strings.ToUpper(m[5])
	if len(frac) > 9 {
		frac = frac[:9]
	}
	if frac != "" {
		frac = "." + frac
	}
	if zone == "" {
		zone = "Z"
	}
	t, err := time.Parse(time.RFC3339Nano, m[1]+"T"+m[3]+frac+zone)
	return t.UTC(), err == nil
}

func TestNormalizeInsight(t *testing.T) {
	t.Parallel()
	raw := []byte(`{"eventVersion":"1.08","eventTime":"2022-04-12T16:10:00Z","awsRegion":"eu-central-1",` +
		`"eventID":"49dfd327-5991-494b-98bf-6fe1eb3e3732","eventType":"AwsCloudTrailInsight","recipientAccountId":"246337027688",` +
		`"sharedEventID":"26acc406-e3d7-4f74-90bd-aca9d06c5127","insightDetails":{"state":"Start","eventSource":"autoscaling.amazonaws.com",` +
		`"eventName":"CompleteLifecycleAction","insightType":"ApiCallRateInsight","insightContext":{"statistics":{"baseline":{"average":8.82145e-05}}}},` +
		`"eventCategory":"Insight"}`)
	ev, err := Normalize(raw, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventSource != "autoscaling.amazonaws.com" || ev.EventName != "CompleteLifecycleAction" ||
		ev.EventID != "49dfd327-5991-494b-98bf-6fe1eb3e3732" || ev.EventCategory != "Insight" ||
		ev.SharedEventID != "26acc406-e3d7-4f74-90bd-aca9d06c5127" || !ev.EventTime.Equal(time.Date(2022, 4, 12, 16, 10, 0, 0, time.UTC)) {
		t.Fatalf("%+v", ev)
	}
	// insightDetails of a record that is not an Insight does not count.
	ev, _ = Normalize([]byte(`{"eventTime":"2022-04-12T16:10:00Z","eventSource":"s","insightDetails":{"eventSource":"x"}}`), "b", "k")
	if ev.EventSource != "s" {
		t.Fatalf("EventSource = %q", ev.EventSource)
	}
}

func TestNormalizeFields(t *testing.T) {
	t.Parallel()
	raw := []byte(`{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::1:assumed-role/r/s",` +
		`"accountId":"1","accessKeyId":"ASIA","invokedBy":"cloudformation.amazonaws.com","sessionContext":{"sessionIssuer":{"type":"Role",` +
		`"arn":"arn:aws:iam::1:role/r","userName":"r"},"attributes":{"creationDate":"2024-01-01T00:00:00Z","mfaAuthenticated":"false"}}},` +
		`"eventTime":"2024-08-01T13:42:21.123+02:00","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1",` +
		`"sourceIPAddress":"AWS Internal","userAgent":"ua \"quoted\" \u00e9","errorCode":"AccessDenied","errorMessage":"no",` +
		`"requestParameters":{"userName":"u"},"responseElements":null,"additionalEventData":"a string","resources":[{"ARN":"x"}],` +
		`"requestID":"req","eventID":"id","readOnly":"True","managementEvent":false,"eventType":"AwsApiCall","eventCategory":"Management",` +
		`"recipientAccountId":123456789012,"sharedEventID":"sh","vpcEndpointId":"vpce-1","serviceEventDetails":"a string"}`)
	ev, err := Normalize(raw, "bucket", "key")
	if err != nil {
		t.Fatal(err)
	}
	f, tr := false, true
	want := Event{
		EventID: "id", EventTime: time.Date(2024, 8, 1, 11, 42, 21, 123e6, time.UTC), EventVersion: "1.09",
		EventSource: "iam.amazonaws.com", EventName: "CreateUser", EventType: "AwsApiCall", EventCategory: "Management",
		AWSRegion: "us-east-1", SourceIPAddress: "AWS Internal", UserAgent: `ua "quoted" é`,
		UserIdentityType: "AssumedRole", UserIdentityARN: "arn:aws:sts::1:assumed-role/r/s", UserIdentityAccountID: "1",
		UserIdentityPrincipalID: "AROA:s", UserIdentityAccessKeyID: "ASIA", SessionIssuerARN: "arn:aws:iam::1:role/r",
		SessionMFAAuthenticated: &f, InvokedBy: "cloudformation.amazonaws.com", ErrorCode: "AccessDenied", ErrorMessage: "no",
		RequestID: "req", ReadOnly: &tr, ManagementEvent: &f, RecipientAccountID: "123456789012", SharedEventID: "sh",
		VPCEndpointID: "vpce-1", RequestParameters: json.RawMessage(`{"userName":"u"}`),
		AdditionalEventData: json.RawMessage(`"a string"`), Resources: json.RawMessage(`[{"ARN":"x"}]`),
		Record: raw, S3Bucket: "bucket", S3Key: "key", Layout: refLayout(raw),
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("got  %+v\nwant %+v", ev, want)
	}
	// The Event does not alias the caller's bytes.
	raw[len(raw)-3] = 'X'
	if ev.Record[len(raw)-3] == 'X' {
		t.Fatal("Record aliases raw")
	}
}

func TestNormalizeTolerance(t *testing.T) {
	t.Parallel()
	const ts = `"eventTime":"2024-01-01T00:00:00Z"`
	tests := []struct {
		name, raw string
		check     func(Event) bool
	}{
		{"bool readOnly", `{` + ts + `,"readOnly":true}`, func(e Event) bool { return *e.ReadOnly }},
		{"string readOnly", `{` + ts + `,"readOnly":"false"}`, func(e Event) bool { return !*e.ReadOnly }},
		{"TRUE", `{` + ts + `,"managementEvent":"TRUE"}`, func(e Event) bool { return *e.ManagementEvent }},
		{"odd bool", `{` + ts + `,"readOnly":"yes","managementEvent":1}`, func(e Event) bool { return e.ReadOnly == nil && e.ManagementEvent == nil }},
		{"mfa bool", `{` + ts + `,"userIdentity":{"sessionContext":{"attributes":{"mfaAuthenticated":true}}}}`, func(e Event) bool { return *e.SessionMFAAuthenticated }},
		{"number as text", `{` + ts + `,"userIdentity":{"accountId":123}}`, func(e Event) bool { return e.UserIdentityAccountID == "123" }},
		{"bool as text", `{` + ts + `,"errorCode":false}`, func(e Event) bool { return e.ErrorCode == "false" }},
		{"object as text", `{` + ts + `,"userAgent":{"a":1},"awsRegion":["x"],"eventName":null}`, func(e Event) bool {
			return e.UserAgent == "" && e.AWSRegion == "" && e.EventName == ""
		}},
		{"identity not an object", `{` + ts + `,"userIdentity":"root"}`, func(e Event) bool { return e.UserIdentityType == "" }},
		{"null identity", `{` + ts + `,"userIdentity":null,"requestParameters":null,"resources":null}`, func(e Event) bool {
			return e.RequestParameters == nil && e.Resources == nil
		}},
		{"session issuer userName not used", `{` + ts + `,"userIdentity":{"type":"AssumedRole","sessionContext":{"sessionIssuer":{"userName":"role"}}}}`,
			func(e Event) bool { return e.UserIdentityUserName == "" }},
		{"keys match exactly", `{` + ts + `,"userIdentity":{"accountid":"1","accesKeyId":"2"}}`, func(e Event) bool {
			return e.UserIdentityAccountID == "" && e.UserIdentityAccessKeyID == ""
		}},
		{"escaped key", `{` + ts + `,"event\u004eame":"n"}`, func(e Event) bool { return e.EventName == "n" }},
		{"duplicate key, last wins", `{` + ts + `,"eventName":"a","eventName":"b"}`, func(e Event) bool { return e.EventName == "b" }},
		{"duplicate identity replaces", `{` + ts + `,"userIdentity":{"arn":"a","type":"t"},"userIdentity":{"arn":"b"}}`, func(e Event) bool {
			return e.UserIdentityARN == "b" && e.UserIdentityType == ""
		}},
		{"whitespace around", " \n{" + ts + ",\"eventName\" : \"n\" }\n", func(e Event) bool { return e.EventName == "n" && e.Record[0] == '{' }},
		{"numeric eventID", `{` + ts + `,"eventID":42}`, func(e Event) bool { return strings.HasPrefix(e.EventID, SyntheticIDPrefix) }},
		{"empty eventID", `{` + ts + `,"eventID":""}`, func(e Event) bool { return strings.HasPrefix(e.EventID, SyntheticIDPrefix) }},
		{"deep unmapped value", `{` + ts + `,"x":` + strings.Repeat("[", 400) + strings.Repeat("]", 400) + `}`, func(e Event) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Normalize([]byte(tt.raw), "b", "k")
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(ev) {
				t.Fatalf("%+v", ev)
			}
			want, err := refNormalize([]byte(tt.raw), "b", "k")
			if err != nil || !eventsEqual(ev, want) {
				t.Fatalf("oracle differs:\n%+v\n%+v %v", ev, want, err)
			}
		})
	}
}

func TestNormalizeEventTime(t *testing.T) {
	t.Parallel()
	utc := func(y, mo, d, h, mi, s, ns int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	}
	good := map[string]time.Time{
		`"2024-08-01T13:42:21Z"`:                 utc(2024, 8, 1, 13, 42, 21, 0),
		`"2024-08-01t13:42:21z"`:                 utc(2024, 8, 1, 13, 42, 21, 0),
		`"2024-08-01T13:42:21.5Z"`:               utc(2024, 8, 1, 13, 42, 21, 5e8),
		`"2024-08-01T13:42:21.123456789Z"`:       utc(2024, 8, 1, 13, 42, 21, 123456789),
		`"2024-08-01T13:42:21.1234567891Z"`:      utc(2024, 8, 1, 13, 42, 21, 123456789),
		`"2024-08-01T13:42:21+02:00"`:            utc(2024, 8, 1, 11, 42, 21, 0),
		`"2024-08-01T00:42:21-01:30"`:            utc(2024, 8, 1, 2, 12, 21, 0),
		`"2025-01-20 16:52:14.000000000"`:        utc(2025, 1, 20, 16, 52, 14, 0),
		`"2024-06-02 20:27:12"`:                  utc(2024, 6, 2, 20, 27, 12, 0),
		`"2024-06-02 20:27:12.548"`:              utc(2024, 6, 2, 20, 27, 12, 548e6),
		`"2021-05-20 15:53:47Z"`:                 utc(2021, 5, 20, 15, 53, 47, 0),
		`"2022-02-08 09:23:37+11:00"`:            utc(2022, 2, 7, 22, 23, 37, 0),
		`"2024-02-29T00:00:00Z"`:                 utc(2024, 2, 29, 0, 0, 0, 0),
		`"2024-08-01T13:42:21\u005a"`:            utc(2024, 8, 1, 13, 42, 21, 0),
		`"2024-08-01T13:42:21.000000000+00:00"`:  utc(2024, 8, 1, 13, 42, 21, 0),
		`"0001-01-01T00:00:00Z"`:                 utc(1, 1, 1, 0, 0, 0, 0),
		`"9999-12-31T23:59:59.999999999-23:59"`:  utc(10000, 1, 1, 23, 58, 59, 999999999),
		`"2000-02-29 12:00:00"`:                  utc(2000, 2, 29, 12, 0, 0, 0),
		`"2024-08-01T13:42:21.000000000000000Z"`: utc(2024, 8, 1, 13, 42, 21, 0),
	}
	for in, want := range good {
		ev, err := Normalize([]byte(`{"eventTime":`+in+`}`), "b", "k")
		if err != nil || !ev.EventTime.Equal(want) || ev.EventTime.Location() != time.UTC {
			t.Errorf("%s: %v, %v; want %v", in, ev.EventTime, err, want)
		}
	}
	bad := map[string]string{
		`{}`:                                               "eventTime missing",
		`{"eventTime":null}`:                               "eventTime missing",
		`{"eventTime":""}`:                                 `eventTime unparseable: ""`,
		`{"eventTime":"redacted"}`:                         `eventTime unparseable: "redacted"`,
		`{"eventTime":1700000000}`:                         `eventTime unparseable: 1700000000`,
		`{"eventTime":{"a":1}}`:                            `eventTime unparseable: {"a":1}`,
		`{"eventTime":"2024-08-01T13:42:21"}`:              `eventTime unparseable: "2024-08-01T13:42:21"`,
		`{"eventTime":"2024-08-01"}`:                       `eventTime unparseable: "2024-08-01"`,
		`{"eventTime":"2024-13-01T00:00:00Z"}`:             `eventTime unparseable: "2024-13-01T00:00:00Z"`,
		`{"eventTime":"2023-02-29T00:00:00Z"}`:             `eventTime unparseable: "2023-02-29T00:00:00Z"`,
		`{"eventTime":"2024-08-01T24:00:00Z"}`:             `eventTime unparseable: "2024-08-01T24:00:00Z"`,
		`{"eventTime":"2024-08-01T23:59:60Z"}`:             `eventTime unparseable: "2024-08-01T23:59:60Z"`,
		`{"eventTime":"2024-08-01T13:42:21.Z"}`:            `eventTime unparseable: "2024-08-01T13:42:21.Z"`,
		`{"eventTime":"2024-08-01T13:42:21+0200"}`:         `eventTime unparseable: "2024-08-01T13:42:21+0200"`,
		`{"eventTime":"2024-08-01T13:42:21+24:00"}`:        `eventTime unparseable: "2024-08-01T13:42:21+24:00"`,
		`{"eventTime":"2024-08-01T13:42:21 Z"}`:            `eventTime unparseable: "2024-08-01T13:42:21 Z"`,
		`{"eventTime":"+2024-08-01T13:42:21Z"}`:            `eventTime unparseable: "+2024-08-01T13:42:21Z"`,
		`{"eventTime":"` + strings.Repeat("9", 100) + `"}`: `eventTime unparseable: "` + strings.Repeat("9", 63) + `...`,
	}
	for in, want := range bad {
		_, err := Normalize([]byte(in), "b", "k")
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %q", in, err, want)
		}
	}
}

func TestNormalizeSyntheticID(t *testing.T) {
	t.Parallel()
	a := []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"A"}`)
	b := []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"B"}`)
	ea1, _ := Normalize(a, "b", "k1")
	ea2, _ := Normalize(bytes.Clone(a), "other", "k2")
	eb, _ := Normalize(b, "b", "k1")
	if ea1.EventID != ea2.EventID {
		t.Fatalf("same bytes, different ids: %s %s", ea1.EventID, ea2.EventID)
	}
	if ea1.EventID == eb.EventID {
		t.Fatalf("different bytes, same id %s", ea1.EventID)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(ea1.EventID) {
		t.Fatalf("id %q", ea1.EventID)
	}
	// Not a UUID, so never equal to an AWS event ID.
	if regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(ea1.EventID) {
		t.Fatal("looks like a UUID")
	}
}

// Normalize repairs records that did not come through a Decoder.
func TestNormalizeUnsafeText(t *testing.T) {
	t.Parallel()
	raw := []byte("{\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventName\":\"a\\u0000b\",\"userAgent\":\"x\xffy\"," +
		"\"errorMessage\":\"\\ud800!\",\"errorCode\":\"\\\\u0000\",\"requestParameters\":{\"k\":\"\\u0000\"}}")
	ev, err := Normalize(raw, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventName != "a\uFFFDb" || ev.UserAgent != "x\uFFFDy" || ev.ErrorMessage != "\uFFFD!" || ev.ErrorCode != `\u0000` {
		t.Fatalf("%q %q %q %q", ev.EventName, ev.UserAgent, ev.ErrorMessage, ev.ErrorCode)
	}
	checkRecord(t, ev.Record)
	if string(ev.RequestParameters) != `{"k":"\ufffd"}` {
		t.Fatalf("RequestParameters = %s", ev.RequestParameters)
	}
	var v any
	if err := json.Unmarshal(ev.Record, &v); err != nil || hasNUL(v) {
		t.Fatalf("record %s: %v", ev.Record, err)
	}
}

func TestNormalizeNotRecord(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, ` `, `[]`, `"x"`, `null`, `1`, `{`, `{"eventTime":"2024-01-01T00:00:00Z"`,
		`{"eventTime":"2024-01-01T00:00:00Z"} x`, `{"eventTime":"2024-01-01T00:00:00Z",}`, `{"a" 1}`, "{\"a\":\"\x01\"}"} {
		if ev, err := Normalize([]byte(in), "b", "k"); err == nil {
			t.Errorf("%q: no error, %+v", in, ev)
		}
	}
	if _, err := Normalize([]byte(`[{}]`), "b", "k"); !errors.Is(err, errNotObject) {
		t.Errorf("array: %v", err)
	}
}

func TestNormalizeTextIsSafe(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a\\u0000", "\\ud800", "\\udfff\\ud800", "\xff\xfe", "\\u00e9\\ud83c\\udf89"} {
		ev, err := Normalize([]byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"`+s+`"}`), "b", "k")
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(ev.EventName) || strings.ContainsRune(ev.EventName, 0) {
			t.Errorf("%q gave %q", s, ev.EventName)
		}
	}
}

func refSyntheticID(raw []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
}
