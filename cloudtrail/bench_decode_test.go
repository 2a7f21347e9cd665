package cloudtrail

// Measured on the corpus rebuilt as 6 gzip'd objects of 150 records (855
// distinct records, 1,191 bytes on average, 7.1x compression), go1.26.8
// linux/amd64, on a shared 2-vCPU AMD EPYC VM whose load average stayed at
// 6-11 while other work ran: wall times were inflated up to 3x by waiting
// for a CPU, so the table gives process CPU time per record (cpu-ns/record,
// GC included), median of 6 runs of -benchtime 1s, best run in brackets.
//
//	                                       CPU ns/record     B/record  allocs/record
//	Decode: gzip + scan + repair            3,300 (2,800)         ~0     ~0
//	  of which gzip (BenchmarkGunzip)       1,820 (1,640)
//	DecodeStdlib: json.Decoder Token
//	  + Decode(&RawMessage) per record     13,100 (11,300)      2,290    2.4
//	Normalize, hand-rolled (kept)           3,330 (2,690)       1,607    2
//	Normalize, encoding/json struct        16,300 (14,400)      3,031   35
//	Normalize, encoding/json tolerant      29,600 (26,900)      5,876   71
//	Normalize, goccy/go-json struct         5,360 (4,960)       3,815   17
//	Normalize, goccy/go-json tolerant      12,750 (11,100)      5,722   66
//	DecodeNormalize, end to end             7,500 (6,100)       1,528    2.8
//
// That is about 130,000 records/s per core end to end on this machine
// (wall, when it got a CPU: 4,000 ns/record for Decode, 2,750 for Normalize).
//
// The alternatives share the time parsing and Event building; only the JSON
// work differs. "Struct" decodes into a struct of only the mapped fields
// (json.RawMessage for the JSON columns and booleans); it fails a whole record
// when a text field is not a string, and it matches keys case-insensitively.
// "Tolerant" accepts any JSON type in every text field, as Normalize does.
// goccy/go-json (v0.10.5, measured in a scratch module, not a dependency) is
// 3x faster than encoding/json, but its tolerant form is still 4x slower than
// the hand-rolled pass, which also validates the record.

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// benchRecords returns the corpus records, as Decoder.Next returns them.
func benchRecords(b *testing.B) [][]byte {
	b.Helper()
	var recs [][]byte
	for _, p := range corpusObjects(b) {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		rs, err := decodeAll(f, Limits{})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			recs = append(recs, []byte(r))
		}
	}
	return recs
}

// perObject is how many records a benchmark object holds.
const perObject = 150

// benchObjects rebuilds the corpus as realistic gzip'd objects of 150
// records each, and returns them with their decompressed size.
func benchObjects(b *testing.B) (objs [][]byte, plain [][]byte, records int) {
	b.Helper()
	recs := benchRecords(b)
	for start := 0; start < len(recs); start += perObject {
		var buf bytes.Buffer
		buf.WriteString(`{"Records":[`)
		for i := range perObject {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(recs[(start+i)%len(recs)])
		}
		buf.WriteString(`]}`)
		plain = append(plain, bytes.Clone(buf.Bytes()))
		objs = append(objs, gzipBytes(b, buf.Bytes()))
		records += perObject
	}
	return objs, plain, records
}

// reportPerRecord reports wall and CPU time per record. The CPU time is the
// whole process's (GC included) since cpu0 was taken; it is steadier than
// wall time on a shared machine.
func reportPerRecord(b *testing.B, records int, cpu0 time.Duration) {
	per := float64(b.Elapsed().Nanoseconds()) / float64(records)
	b.ReportMetric(per, "ns/record")
	b.ReportMetric(1e9/per, "records/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(records), "cpu-ns/record")
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkDecode(b *testing.B) { benchDecode(b, decodeOnly) }

// BenchmarkGunzip is the decompression part of BenchmarkDecode.
func BenchmarkGunzip(b *testing.B) {
	objs, _, _ := benchObjects(b)
	d, _ := NewDecoder(bytes.NewReader(objs[0]), Limits{})
	buf := make([]byte, decodeBufSize)
	records := 0
	cpu0 := cpuTime(b)
	for i := 0; b.Loop(); i++ {
		if err := d.gz.Reset(bytes.NewReader(objs[i%len(objs)])); err != nil {
			b.Fatal(err)
		}
		for {
			_, err := d.gz.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		records += perObject
	}
	reportPerRecord(b, records, cpu0)
}

// BenchmarkDecodeStdlib splits the same objects with encoding/json, for
// comparison: Token to walk into the array, Decode into a RawMessage per
// record.
func BenchmarkDecodeStdlib(b *testing.B) {
	objs, _, _ := benchObjects(b)
	records := 0
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for i := 0; b.Loop(); i++ {
		zr := gunzipReader(b, objs[i%len(objs)])
		dec := json.NewDecoder(zr)
		for range 3 { // {, "Records", [
			if _, err := dec.Token(); err != nil {
				b.Fatal(err)
			}
		}
		for dec.More() {
			var rec json.RawMessage
			if err := dec.Decode(&rec); err != nil {
				b.Fatal(err)
			}
			records++
		}
	}
	reportPerRecord(b, records, cpu0)
}

func gunzipReader(b *testing.B, obj []byte) io.Reader {
	d, err := NewDecoder(bytes.NewReader(obj), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	return d.gz
}

func BenchmarkNormalize(b *testing.B) {
	benchNormalize(b, func(raw []byte) (Event, error) { return Normalize(raw, "bucket", "key") })
}

func BenchmarkNormalizeStdlibStruct(b *testing.B) {
	benchNormalize(b, func(raw []byte) (Event, error) { return structNormalize(raw, json.Unmarshal, false) })
}

func BenchmarkNormalizeStdlibTolerant(b *testing.B) {
	benchNormalize(b, func(raw []byte) (Event, error) { return structNormalize(raw, json.Unmarshal, true) })
}

func benchNormalize(b *testing.B, normalize func([]byte) (Event, error)) {
	recs := benchRecords(b)
	records := 0
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for i := 0; b.Loop(); i++ {
		normalize(recs[i%len(recs)])
		records++
	}
	reportPerRecord(b, records, cpu0)
}

func BenchmarkDecodeNormalize(b *testing.B) { benchDecode(b, decodeThenNormalize) }

// BenchmarkDecodeNextEntry is BenchmarkDecodeNormalize as pgtrail does it:
// one pass per record.
func BenchmarkDecodeNextEntry(b *testing.B) { benchDecode(b, decodeNextEntry) }

// What benchDecode does with each record.
const (
	decodeOnly          = iota // Decoder.Next
	decodeThenNormalize        // Decoder.Next, then Normalize
	decodeNextEntry            // Decoder.NextEntry
)

func benchDecode(b *testing.B, mode int) {
	objs, plain, _ := benchObjects(b)
	var size int64
	for _, p := range plain {
		size += int64(len(p))
	}
	b.SetBytes(size / int64(len(objs)))
	d, _ := NewDecoder(bytes.NewReader(objs[0]), Limits{})
	records := 0
	var row Entry
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for i := 0; b.Loop(); i++ {
		if err := d.Reset(bytes.NewReader(objs[i%len(objs)])); err != nil {
			b.Fatal(err)
		}
		for {
			var err error
			if mode == decodeNextEntry {
				err = d.NextEntry(&row, "bucket", "key")
			} else {
				var raw []byte
				if raw, err = d.Next(); err == nil && mode == decodeThenNormalize {
					_, _ = Normalize(raw, "bucket", "key")
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			records++
		}
	}
	reportPerRecord(b, records, cpu0)
}

// The struct-decoding alternatives that the hand-rolled Normalize was
// measured against. Only the JSON work differs: time parsing and the
// building of the Event are shared.

// flexText accepts any JSON type, as Normalize's text fields do.
type flexText string

func (t *flexText) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = flexText(s)
	case '{', '[', 'n':
		*t = ""
	default:
		*t = flexText(b)
	}
	return nil
}

// flexObject decodes into T only when the value is an object.
type flexObject[T any] struct{ v T }

func (o *flexObject[T]) UnmarshalJSON(b []byte) error {
	if b[0] == '{' {
		return json.Unmarshal(b, &o.v)
	}
	return nil
}

type structIdentity[S any] struct {
	Type           S `json:"type"`
	ARN            S `json:"arn"`
	AccountID      S `json:"accountId"`
	PrincipalID    S `json:"principalId"`
	AccessKeyID    S `json:"accessKeyId"`
	UserName       S `json:"userName"`
	InvokedBy      S `json:"invokedBy"`
	SessionContext *struct {
		SessionIssuer *struct {
			ARN S `json:"arn"`
		} `json:"sessionIssuer"`
		Attributes *struct {
			MFAAuthenticated json.RawMessage `json:"mfaAuthenticated"`
		} `json:"attributes"`
	} `json:"sessionContext"`
}

type structRecord[S any] struct {
	EventID             S               `json:"eventID"`
	EventTime           json.RawMessage `json:"eventTime"`
	EventVersion        S               `json:"eventVersion"`
	EventSource         S               `json:"eventSource"`
	EventName           S               `json:"eventName"`
	EventType           S               `json:"eventType"`
	EventCategory       S               `json:"eventCategory"`
	AWSRegion           S               `json:"awsRegion"`
	SourceIPAddress     S               `json:"sourceIPAddress"`
	UserAgent           S               `json:"userAgent"`
	ErrorCode           S               `json:"errorCode"`
	ErrorMessage        S               `json:"errorMessage"`
	RequestID           S               `json:"requestID"`
	ReadOnly            json.RawMessage `json:"readOnly"`
	ManagementEvent     json.RawMessage `json:"managementEvent"`
	RecipientAccountID  S               `json:"recipientAccountId"`
	SharedEventID       S               `json:"sharedEventID"`
	VPCEndpointID       S               `json:"vpcEndpointId"`
	RequestParameters   json.RawMessage `json:"requestParameters"`
	ResponseElements    json.RawMessage `json:"responseElements"`
	AdditionalEventData json.RawMessage `json:"additionalEventData"`
	Resources           json.RawMessage `json:"resources"`
	InsightDetails      *struct {
		EventSource S `json:"eventSource"`
		EventName   S `json:"eventName"`
	} `json:"insightDetails"`
}

type tolerantRecord struct {
	structRecord[flexText]
	UserIdentity flexObject[structIdentity[flexText]] `json:"userIdentity"`
}

type typedRecord struct {
	structRecord[string]
	UserIdentity *structIdentity[string] `json:"userIdentity"`
}

// structNormalize is Normalize built on a struct decoder such as
// json.Unmarshal. The typed variant fails on records whose field types vary.
func structNormalize(raw []byte, unmarshal func([]byte, any) error, tolerant bool) (Event, error) {
	rec := bytes.Clone(raw)
	var ev Event
	var r structRecord[string]
	var id structIdentity[string]
	if tolerant {
		var t tolerantRecord
		if err := unmarshal(rec, &t); err != nil {
			return Event{}, err
		}
		r = convertRecord(t.structRecord)
		u := t.UserIdentity.v
		id = structIdentity[string]{Type: string(u.Type), ARN: string(u.ARN), AccountID: string(u.AccountID),
			PrincipalID: string(u.PrincipalID), AccessKeyID: string(u.AccessKeyID), UserName: string(u.UserName), InvokedBy: string(u.InvokedBy)}
		if sc := u.SessionContext; sc != nil {
			if sc.SessionIssuer != nil {
				ev.SessionIssuerARN = string(sc.SessionIssuer.ARN)
			}
			if sc.Attributes != nil {
				ev.SessionMFAAuthenticated = boolPtr(sc.Attributes.MFAAuthenticated)
			}
		}
	} else {
		var t typedRecord
		if err := unmarshal(rec, &t); err != nil {
			return Event{}, err
		}
		r = t.structRecord
		if t.UserIdentity != nil {
			id = *t.UserIdentity
			if sc := id.SessionContext; sc != nil {
				if sc.SessionIssuer != nil {
					ev.SessionIssuerARN = sc.SessionIssuer.ARN
				}
				if sc.Attributes != nil {
					ev.SessionMFAAuthenticated = boolPtr(sc.Attributes.MFAAuthenticated)
				}
			}
		}
	}
	t, err := parseEventTime(r.EventTime)
	if err != nil {
		return Event{}, err
	}
	null := func(v json.RawMessage) json.RawMessage {
		if string(v) == "null" {
			return nil
		}
		return v
	}
	ev.EventID, ev.EventTime, ev.EventVersion = r.EventID, t, r.EventVersion
	ev.EventSource, ev.EventName, ev.EventType, ev.EventCategory = r.EventSource, r.EventName, r.EventType, r.EventCategory
	ev.AWSRegion, ev.SourceIPAddress, ev.UserAgent = r.AWSRegion, r.SourceIPAddress, r.UserAgent
	ev.UserIdentityType, ev.UserIdentityARN, ev.UserIdentityAccountID = id.Type, id.ARN, id.AccountID
	ev.UserIdentityPrincipalID, ev.UserIdentityAccessKeyID, ev.UserIdentityUserName = id.PrincipalID, id.AccessKeyID, id.UserName
	ev.InvokedBy, ev.ErrorCode, ev.ErrorMessage, ev.RequestID = id.InvokedBy, r.ErrorCode, r.ErrorMessage, r.RequestID
	ev.ReadOnly, ev.ManagementEvent = boolPtr(r.ReadOnly), boolPtr(r.ManagementEvent)
	ev.RecipientAccountID, ev.SharedEventID, ev.VPCEndpointID = r.RecipientAccountID, r.SharedEventID, r.VPCEndpointID
	ev.RequestParameters, ev.ResponseElements = null(r.RequestParameters), null(r.ResponseElements)
	ev.AdditionalEventData, ev.Resources = null(r.AdditionalEventData), null(r.Resources)
	ev.Record = rec
	if ev.EventType == "AwsCloudTrailInsight" && r.InsightDetails != nil {
		ev.EventSource, ev.EventName = r.InsightDetails.EventSource, r.InsightDetails.EventName
	}
	if ev.EventID == "" {
		ev.EventID = refSyntheticID(rec)
	}
	return ev, nil
}

func convertRecord(t structRecord[flexText]) structRecord[string] {
	r := structRecord[string]{
		EventID: string(t.EventID), EventTime: t.EventTime, EventVersion: string(t.EventVersion),
		EventSource: string(t.EventSource), EventName: string(t.EventName), EventType: string(t.EventType),
		EventCategory: string(t.EventCategory), AWSRegion: string(t.AWSRegion), SourceIPAddress: string(t.SourceIPAddress),
		UserAgent: string(t.UserAgent), ErrorCode: string(t.ErrorCode), ErrorMessage: string(t.ErrorMessage),
		RequestID: string(t.RequestID), ReadOnly: t.ReadOnly, ManagementEvent: t.ManagementEvent,
		RecipientAccountID: string(t.RecipientAccountID), SharedEventID: string(t.SharedEventID),
		VPCEndpointID: string(t.VPCEndpointID), RequestParameters: t.RequestParameters,
		ResponseElements: t.ResponseElements, AdditionalEventData: t.AdditionalEventData, Resources: t.Resources,
	}
	if t.InsightDetails != nil {
		r.InsightDetails = &struct {
			EventSource string `json:"eventSource"`
			EventName   string `json:"eventName"`
		}{string(t.InsightDetails.EventSource), string(t.InsightDetails.EventName)}
	}
	return r
}

func boolPtr(v []byte) *bool {
	if b, ok := parseBool(v); ok {
		return &b
	}
	return nil
}
