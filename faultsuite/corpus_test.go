package faultsuite

import (
	"github.com/pgtrail/pgtrail/internal/corpus"

	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// eventKey is what makes an event one row: its ID and its instant, to the
// microsecond that timestamptz keeps.
type eventKey struct {
	id     string
	micros int64
}

func keyOf(id string, at time.Time) eventKey {
	return eventKey{id, at.Round(time.Microsecond).UnixMicro()}
}

// object is one S3 object of a scenario and what it must yield.
type object struct {
	key     string
	body    []byte
	events  []eventKey
	rejects int // records without a usable eventTime
}

// Markers replaced in the generated JSON by escapes that encoding/json
// cannot produce: a lone UTF-16 surrogate and a NUL, both of which jsonb
// refuses and the decoder rewrites.
const (
	markSurrogate = "@@SURROGATE@@"
	markNUL       = "@@NUL@@"
)

// generate returns n gzip'd CloudTrail objects under prefix with 1 to 12
// records each, their events spread over days UTC days (one partition
// each). About one object in 25 repeats an event of an earlier object (as an
// organization trail and an account trail do), one in 40 carries a record
// without eventTime, and one in 30 a record with a lone surrogate or a NUL
// escape.
func generate(rng *rand.Rand, prefix string, n, days int) []object {
	var seen []map[string]any
	objs := make([]object, 0, n)
	for i := range n {
		o, recs := makeObject(rng, 1+rng.IntN(12), days)
		if len(seen) > 0 && rng.IntN(25) == 0 {
			dup := seen[rng.IntN(len(seen))]
			recs = append(recs, dup)
			at, _ := time.Parse(time.RFC3339Nano, dup["eventTime"].(string))
			o.events = append(o.events, keyOf(dup["eventID"].(string), at))
		}
		if rng.IntN(40) == 0 {
			rec := record(rng, time.Now())
			delete(rec, "eventTime")
			recs = append(recs, rec)
			o.rejects++
		}
		switch rng.IntN(60) {
		case 0:
			recs[0]["userAgent"] = "agent " + markSurrogate
		case 1:
			recs[0]["userAgent"] = "agent " + markNUL
		}
		seen = append(seen, recs[:len(o.events)]...)
		o.key = objectKey(prefix, o.events[0], i)
		o.body = gzipJSON(map[string]any{"Records": recs})
		objs = append(objs, o)
	}
	return objs
}

// bigObject returns one object of n records under prefix.
func bigObject(rng *rand.Rand, prefix string, n int) object {
	o, recs := makeObject(rng, n, 3)
	o.key = objectKey(prefix, o.events[0], 0)
	o.body = gzipJSON(map[string]any{"Records": recs})
	return o
}

// makeObject returns the events of an object of n records over days days.
func makeObject(rng *rand.Rand, n, days int) (object, []map[string]any) {
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	var o object
	recs := make([]map[string]any, 0, n+2)
	for range n {
		at := base.Add(time.Duration(rng.Int64N(int64(days) * int64(24*time.Hour)))).Truncate(time.Millisecond)
		rec := record(rng, at)
		recs = append(recs, rec)
		o.events = append(o.events, keyOf(rec["eventID"].(string), at))
	}
	return o, recs
}

// objectKey names an object as CloudTrail does, under prefix.
func objectKey(prefix string, first eventKey, i int) string {
	at := time.UnixMicro(first.micros).UTC()
	return fmt.Sprintf("%s/AWSLogs/111122223333/CloudTrail/us-east-1/%s/111122223333_CloudTrail_us-east-1_%sZ_%05d.json.gz",
		prefix, at.Format("2006/01/02"), at.Format("20060102T1504"), i)
}

// record returns one plausible CloudTrail management event at at.
func record(rng *rand.Rand, at time.Time) map[string]any {
	id := fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, 0x4000|rng.Uint32()&0x0fff,
		0x8000|rng.Uint32()&0x3fff, rng.Uint64()&0xffffffffffff)
	names := []string{"GetObject", "PutObject", "AssumeRole", "DescribeInstances", "ConsoleLogin", "CreateUser", "StopLogging"}
	return map[string]any{
		"eventVersion": "1.09",
		"userIdentity": map[string]any{
			"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/alice",
			"accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice",
		},
		"eventTime":          at.Format(time.RFC3339Nano),
		"eventSource":        "iam.amazonaws.com",
		"eventName":          names[rng.IntN(len(names))],
		"awsRegion":          "us-east-1",
		"sourceIPAddress":    fmt.Sprintf("198.51.100.%d", rng.IntN(256)),
		"userAgent":          "aws-cli/2.15.0",
		"requestParameters":  map[string]any{"userName": "bob", "n": rng.IntN(1000)},
		"responseElements":   nil,
		"requestID":          fmt.Sprintf("%016x", rng.Uint64()),
		"eventID":            id,
		"readOnly":           rng.IntN(2) == 0,
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": "111122223333",
		"eventCategory":      "Management",
	}
}

func gzipJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	raw = bytes.ReplaceAll(raw, []byte(markSurrogate), []byte(`\ud800`))
	raw = bytes.ReplaceAll(raw, []byte(markNUL), []byte(`\u0000`))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return buf.Bytes()
}

// corpusDir is the shared corpus's S3 tree, or "".
func corpusDir() string {
	if dir := corpus.Find(); dir != "" {
		return filepath.Join(dir, "s3")
	}
	return ""
}

// realCorpus reads the shared corpus as objects under prefix "corpus/",
// with the events and rejects that a plain encoding/json reading finds in
// them. It returns nil when the corpus is not there.
var realCorpus = sync.OnceValues(func() ([]object, error) {
	dir := corpusDir()
	if dir == "" {
		return nil, nil
	}
	var objs []object
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		o := object{key: "corpus/" + filepath.ToSlash(rel), body: body}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var doc struct{ Records []json.RawMessage }
		if err := json.NewDecoder(zr).Decode(&doc); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, raw := range doc.Records {
			var r struct {
				EventID   any `json:"eventID"`
				EventTime any `json:"eventTime"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			at, ok := parseTime(r.EventTime)
			if !ok {
				o.rejects++
				continue
			}
			id, _ := r.EventID.(string)
			if id == "" {
				sum := sha256.Sum256(raw)
				id = "sha256:" + hex.EncodeToString(sum[:])
			}
			o.events = append(o.events, keyOf(id, at))
		}
		objs = append(objs, o)
		return nil
	})
	return objs, err
})

// parseTime reads eventTime in the forms pgtrail accepts.
func parseTime(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if at, err := time.Parse(layout, s); err == nil {
			return at, true
		}
	}
	return time.Time{}, false
}

// cloudTrailBody is CloudTrail's notification of keys; wrapped, inside an
// SNS envelope as CloudTrail's topic delivers it.
func cloudTrailBody(bucket string, keys []string, wrapped bool) string {
	b, _ := json.Marshal(map[string]any{"s3Bucket": bucket, "s3ObjectKey": keys})
	if !wrapped {
		return string(b)
	}
	env, _ := json.Marshal(map[string]any{
		"Type": "Notification", "MessageId": fmt.Sprintf("%x", sha256.Sum256(b))[:32],
		"TopicArn": "arn:aws:sns:us-east-1:111122223333:trail", "Message": string(b),
		"Timestamp": time.Now().UTC().Format(time.RFC3339Nano), "SignatureVersion": "1",
		"Signature": "EXAMPLE", "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
		"UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
	})
	return string(env)
}

// isCanary reports whether key belongs to a canary object.
func isCanary(key string) bool { return strings.HasPrefix(key, "canary/") }
