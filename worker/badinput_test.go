package worker_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/worker"
)

// startObserved runs a worker like env.start, with its logs kept for the
// test to inspect.
func (e *env) startObserved(cfg worker.Config) *observer.ObservedLogs {
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	m := worker.NewMetrics(prometheus.NewRegistry())
	proc := worker.NewProcessor(cfg, e.aws.S3(), e.pg, e.pg, m, log)
	w := worker.New(cfg, e.aws.SQS(), proc, m, log)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("worker.Run: %v", err)
		}
	})
	return logs
}

// sendID puts body on the queue and returns the message's ID.
func (e *env) sendID(body string) string {
	e.t.Helper()
	out, err := e.aws.SQS().SendMessage(e.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.queueURL), MessageBody: aws.String(body)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.MessageId)
}

// gz compresses b.
func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// goodRecord is a valid CloudTrail record whose userAgent is the raw JSON
// text agent (quotes and escapes included).
func goodRecord(id, agent string) string {
	return `{"eventVersion":"1.09","eventID":"` + id + `","eventTime":"2024-03-01T12:00:00Z",` +
		`"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",` +
		`"userAgent":` + agent + `,"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"}}`
}

// gzipBomb returns about 1 MB of gzip that inflates to about 1 GiB of a
// CloudTrail log's opening followed by whitespace, which is valid JSON as
// far as it goes: only the decompressed-size cap can stop it. It is one
// small member repeated, which a gzip reader reads as their concatenation.
func gzipBomb() []byte {
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	_ = zw.Close()
	bomb := gz([]byte(`{"Records":[`))
	for len(bomb) < 1<<20 {
		bomb = append(bomb, member.Bytes()...)
	}
	return bomb
}

// nested returns a record nested depth arrays deep.
func nested(depth int) string {
	return `{"eventID":"deep","eventTime":"2024-03-01T12:00:00Z","requestParameters":` +
		strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
}

// TestBadInput feeds one worker every kind of bad object and message at
// once, among good ones. Each bad one must be refused with an error log that
// names the message and, for an object, its bucket and key, and says why;
// the good objects, including those announced with a bad one, must be
// committed; what cannot be read must end in the dead-letter queue (the
// message) or cloudtrail_rejects (the record), and nothing else may.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, 30, 2)
	ctx := e.ctx

	// An allowed bucket that is not the worker's, and a bucket outside the
	// allow-list that holds a valid log: reading it would be a leak.
	other := localaws.UniqueName("other")
	if err := e.aws.CreateBucket(ctx, other); err != nil {
		t.Fatal(err)
	}

	const prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/"
	good := trailFile("good", 3)
	type objectCase struct {
		name string
		key  string
		body []byte // nil: the object does not exist
		why  string // a fragment of the error
	}
	huge := fmt.Sprintf(`{"Records":[%s]}`, goodRecord("huge", `"`+strings.Repeat("x", 10<<20)+`"`))
	objects := []objectCase{
		{"not gzip", "not-gzip.json.gz", []byte("PK\x03\x04 this is a zip file, not a log"), "neither gzip nor JSON"},
		{"truncated gzip", "truncated.json.gz", good[:len(good)/2], "truncated gzip"},
		{"gzip bomb", "bomb.json.gz", gzipBomb(), "exceeds MaxObjectBytes"},
		{"invalid JSON", "invalid.json.gz", gz([]byte(`{"Records":[{"eventID":"x",}]}`)), "invalid JSON"},
		{"not CloudTrail", "not-cloudtrail.json.gz", gz([]byte(`{"hello":"world","items":[1,2,3]}`)), `no "Records" key`},
		{"Records not an array", "records-object.json.gz", gz([]byte(`{"Records":{"eventID":"x"}}`)), `"Records" is not an array`},
		{"record not an object", "record-number.json.gz", gz([]byte(`{"Records":[42]}`)), "record is not an object"},
		{"10 MB record", "huge-record.json.gz", gz([]byte(huge)), "exceeds MaxRecordBytes"},
		{"deeply nested", "deep.json.gz", gz([]byte(`{"Records":[` + nested(100000) + `]}`)), "nested too deeply"},
		{"empty JSON object", "empty-object.json.gz", gz([]byte(`{}`)), `no "Records" key`},
		{"empty gzip", "empty-gzip.json.gz", gz(nil), "no JSON value"},
		{"0-byte object", "zero.json.gz", []byte{}, "empty object"},
		{"missing key", "missing.json.gz", nil, "NoSuchKey"},
	}
	for i := range objects {
		objects[i].key = prefix + objects[i].key
		if objects[i].body != nil {
			e.put(objects[i].key, objects[i].body)
		}
	}
	// Records that jsonb would refuse but that are readable: repaired and
	// stored. Invalid UTF-8 is raw bytes; the others are escapes.
	repaired := map[string]string{
		"utf8":           "\"caf\xe9 \xff\xfe\"",
		"nul":            `"a\u0000b"`,
		"lone-high":      `"\ud800"`,
		"lone-low":       `"x\udc00y"`,
		"high-then-char": `"\ud83d\u0041"`,
		"reversed-pair":  `"\ude00\ud83d"`,
		"escaped":        `"\\ud800 is text"`,
		"pair":           `"\ud83d\ude00"`,
	}
	var recs []string
	for id, agent := range repaired {
		recs = append(recs, goodRecord("repair-"+id, agent))
	}
	recs = append(recs, `{"eventID":"surrogate-key","eventTime":"2024-03-01T12:00:00Z","requestParameters":{"\ud800":"\udfff","ok":"\u0000"}}`)
	// Rejects (no eventTime), one of them dirty too: kept as they were read.
	recs = append(recs, `{"eventID":"no-time","eventName":"GetObject"}`)
	recs = append(recs, "{\"eventID\":\"no-time-dirty\",\"eventName\":\"Get\\ud800\xff\\u0000\"}")
	repairKey := prefix + "repaired.json.gz"
	e.put(repairKey, gz([]byte(`{"Records":[`+strings.Join(recs, ",")+`]}`)))
	emptyRecordsKey := prefix + "empty-records.json.gz"
	e.put(emptyRecordsKey, gz([]byte(`{"Records":[]}`)))

	goodKeys := []string{prefix + "good-1.json.gz", prefix + "good-2.json.gz"}
	e.put(goodKeys[0], trailFile("good1", 4))
	e.put(goodKeys[1], trailFile("good2", 5))
	outsideKey := "evil/AWSLogs/111122223333/CloudTrail/forged.json.gz"
	e.put(outsideKey, trailFile("forged", 2))
	if _, err := e.aws.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(other), Key: aws.String(prefix + "other.json.gz"), Body: bytes.NewReader(trailFile("other", 2))}); err != nil {
		t.Fatal(err)
	}

	// One message per bad object, plus one that announces a bad object
	// between two good ones: the good ones must be committed all the same.
	msgs := map[string]string{} // key → message ID
	for _, c := range objects {
		msgs[c.key] = e.sendID(cloudTrailBody(e.bucket, c.key))
	}
	batchID := e.sendID(cloudTrailBody(e.bucket, goodKeys[0], objects[0].key, goodKeys[1]))
	forgedBucketID := e.sendID(cloudTrailBody(other, prefix+"other.json.gz"))
	forgedPrefixID := e.sendID(cloudTrailBody(e.bucket, outsideKey))
	e.sendID(cloudTrailBody(e.bucket, repairKey, emptyRecordsKey))

	// Messages that are not notifications at all.
	var tooMany []string
	for i := range 10001 {
		tooMany = append(tooMany, fmt.Sprintf("k/%d", i))
	}
	manyKeysID := e.sendID(cloudTrailBody(e.bucket, tooMany...))
	// A long key list within the limit: every key is tried, none is read.
	var missing []string
	for i := range 300 {
		missing = append(missing, fmt.Sprintf("%smissing-%03d.json.gz", prefix, i))
	}
	longListID := e.sendID(cloudTrailBody(e.bucket, missing...))
	e.publish("\x00\x01 garbage in an SNS envelope")
	e.publish(`{"s3Bucket":"` + e.bucket + `","s3ObjectKey":"not-a-list"}`)
	notJSONID := e.sendID(`{"Records":[{"s3":`)

	cfg := e.config()
	cfg.Limits = cloudtrail.Limits{MaxObjectBytes: 16 << 20, MaxRecordBytes: 1 << 20}
	cfg.Allow = worker.AllowList{Buckets: []string{e.bucket}, Prefixes: []string{"AWSLogs/"}}
	logs := e.startObserved(cfg)

	wantDLQ := len(objects) + 1 /* batch */ + 2 /* forged */ + 2 /* key lists */ + 2 /* SNS */ + 1 /* not JSON */
	e.waitFor("the bad messages in the dead-letter queue and the queue drained", 2*time.Minute, func() bool {
		return e.depth(e.dlqURL) >= wantDLQ && e.depth(e.queueURL) == 0
	})
	if n := e.depth(e.dlqURL); n != wantDLQ {
		t.Errorf("%d messages in the dead-letter queue, want %d", n, wantDLQ)
	}

	// Each bad object is named, with its message and why.
	refused := logs.FilterMessage("object refused")
	for _, c := range objects {
		found := refused.Filter(func(le observer.LoggedEntry) bool {
			f := le.ContextMap()
			return f["bucket"] == e.bucket && f["key"] == c.key && f["message_id"] == msgs[c.key] &&
				le.Level == zapcore.ErrorLevel && strings.Contains(fmt.Sprint(f["error"]), c.why)
		})
		if found.Len() == 0 {
			t.Errorf("%s: no error log naming bucket %s, key %s, message %s and %q", c.name, e.bucket, c.key, msgs[c.key], c.why)
		}
	}
	checkRefused := func(name, bucket, key, id, why string) {
		t.Helper()
		found := refused.Filter(func(le observer.LoggedEntry) bool {
			f := le.ContextMap()
			return f["bucket"] == bucket && f["key"] == key && f["message_id"] == id && strings.Contains(fmt.Sprint(f["error"]), why)
		})
		if found.Len() == 0 {
			t.Errorf("%s: no error log naming %s/%s, message %s and %q", name, bucket, key, id, why)
		}
	}
	checkRefused("bad object in a batch", e.bucket, objects[0].key, batchID, objects[0].why)
	checkRefused("bucket outside the allow-list", other, prefix+"other.json.gz", forgedBucketID, "not in the allow-list")
	checkRefused("key outside the allowed prefixes", e.bucket, outsideKey, forgedPrefixID, "under no allowed prefix")
	checkRefused("long key list", e.bucket, missing[299], longListID, "NoSuchKey")

	// Messages that are not notifications are named with why.
	unrecognized := logs.FilterMessage("unrecognized message left for the dead-letter queue")
	for id, why := range map[string]string{manyKeysID: "more than 10000", notJSONID: "not a JSON object"} {
		if unrecognized.FilterField(zap.String("message_id", id)).Len() == 0 {
			t.Errorf("message %s (%s) not logged as unrecognized", id, why)
		}
		for _, le := range unrecognized.FilterField(zap.String("message_id", id)).All() {
			if !strings.Contains(fmt.Sprint(le.ContextMap()["error"]), why) {
				t.Errorf("message %s: error %q does not say %q", id, le.ContextMap()["error"], why)
			}
		}
	}
	snsGarbage := unrecognized.Filter(func(le observer.LoggedEntry) bool {
		err := fmt.Sprint(le.ContextMap()["error"])
		return strings.Contains(err, "sns") && le.ContextMap()["message_id"] != ""
	})
	if snsGarbage.Len() < 2 {
		t.Errorf("%d unrecognized SNS envelopes logged, want both", snsGarbage.Len())
	}

	// The good objects flowed, the forged ones were never read.
	e.waitFor("the good objects committed", 30*time.Second, func() bool {
		return e.count(`SELECT count(*) FROM cloudtrail_objects WHERE s3_key = ANY($1)`, goodKeys) == 2
	})
	if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE s3_key = ANY($1)`, goodKeys); n != 9 {
		t.Errorf("%d events from the good objects, want 9", n)
	}
	if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE event_id LIKE 'forged-%' OR event_id LIKE 'other-%'`); n != 0 {
		t.Errorf("%d events read from objects outside the allow-list", n)
	}
	if n := e.count(`SELECT count(*) FROM cloudtrail_objects WHERE s3_key = $1 AND events = 0`, emptyRecordsKey); n != 1 {
		t.Errorf("an empty Records array is not committed as an object of no events")
	}

	// The repaired records are stored, as valid jsonb, with U+FFFD where
	// jsonb would have refused; the escaped backslash and the valid pair
	// are left alone.
	for id := range repaired {
		if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE event_id = $1`, "repair-"+id); n != 1 {
			t.Errorf("record %s: %d events, want 1", id, n)
		}
	}
	var agents map[string]string
	rows, err := e.pg.Pool().Query(ctx, `SELECT event_id, user_agent FROM cloudtrail_events WHERE event_id LIKE 'repair-%'`)
	if err != nil {
		t.Fatal(err)
	}
	agents = map[string]string{}
	for rows.Next() {
		var id, agent string
		if err := rows.Scan(&id, &agent); err != nil {
			t.Fatal(err)
		}
		agents[strings.TrimPrefix(id, "repair-")] = agent
	}
	for id, want := range map[string]string{
		"utf8": "caf\uFFFD \uFFFD\uFFFD", "nul": "a\uFFFDb", "lone-high": "\uFFFD", "lone-low": "x\uFFFDy",
		"high-then-char": "\uFFFDA", "reversed-pair": "\uFFFD\uFFFD", "escaped": `\ud800 is text`, "pair": "😀",
	} {
		if agents[id] != want {
			t.Errorf("record %s: user_agent %q, want %q", id, agents[id], want)
		}
	}
	var params string
	if err := e.pg.Pool().QueryRow(ctx, `SELECT request_parameters::text FROM cloudtrail_events WHERE event_id = 'surrogate-key'`).Scan(&params); err != nil {
		t.Errorf("record with a lone surrogate in a key: %v", err)
	} else if want := `{"ok": "\ufffd", "\ufffd": "\ufffd"}`; params != want {
		var got, exp any
		_ = json.Unmarshal([]byte(params), &got)
		_ = json.Unmarshal([]byte(want), &exp)
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("request_parameters %s, want %s", params, want)
		}
	}
	if n := e.count(`SELECT count(*) FROM cloudtrail_rejects WHERE s3_key = $1 AND reason LIKE 'eventTime missing%'`, repairKey); n != 2 {
		t.Errorf("%d rejects for the records without eventTime, want 2", n)
	}
	var raw string
	if err := e.pg.Pool().QueryRow(ctx, `SELECT raw FROM cloudtrail_rejects WHERE raw LIKE '%no-time-dirty%'`).Scan(&raw); err != nil {
		t.Errorf("dirty reject: %v", err)
	} else if want := `{"eventID":"no-time-dirty","eventName":"Get\ufffd` + "\uFFFD" + `\ufffd"}`; raw != want {
		t.Errorf("dirty reject stored as %q, want %q", raw, want)
	}
}
