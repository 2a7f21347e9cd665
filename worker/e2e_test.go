package worker_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/internal/corpus"
)

// corpusSource is what a plain JSON reader finds in one source of the
// corpus: the oracle the pipeline's results are checked against.
type corpusSource struct {
	keys     []string
	records  int
	noTime   int            // records without eventTime
	badTime  int            // records whose eventTime does not parse
	distinct map[string]int // (eventID or content hash, instant) → records
}

// readCorpus reads every object under dir with encoding/json.
func readCorpus(t *testing.T, dir string) map[string]*corpusSource {
	t.Helper()
	out := map[string]*corpusSource{}
	err := corpus.Records(dir, func(rel string, records []json.RawMessage) error {
		parts := strings.SplitN(rel, "/", 2)
		src := out[parts[0]]
		if src == nil {
			src = &corpusSource{distinct: map[string]int{}}
			out[parts[0]] = src
		}
		src.keys = append(src.keys, rel)
		for _, raw := range records {
			src.records++
			var r struct {
				EventID   string `json:"eventID"`
				EventTime any    `json:"eventTime"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			ts, ok := r.EventTime.(string)
			if !ok {
				src.noTime++
				continue
			}
			var (
				at  time.Time
				err error
			)
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
				if at, err = time.Parse(layout, ts); err == nil {
					break
				}
			}
			if err != nil {
				src.badTime++
				continue
			}
			id := r.EventID
			if id == "" {
				id = fmt.Sprintf("%x", sha256.Sum256(raw))
			}
			src.distinct[fmt.Sprintf("%s@%d", id, at.UnixNano())]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCorpusEndToEnd uploads the whole corpus, announces every object with
// CloudTrail's SNS notifications, and checks that every record is in the
// database exactly once, as an event or a reject.
func TestCorpusEndToEnd(t *testing.T) {
	t.Parallel()
	dir := corpusDir(t)
	e := setupE2E(t, 30, 3)
	sources := readCorpus(t, dir)

	// The corpus README's table, as far as a plain reader confirms it.
	readme := map[string][3]int{ // objects, records, records without eventTime
		"stratus-red-team": {35, 310, 0}, "otrf-security-datasets": {2, 103, 103},
		"panther-analysis": {139, 432, 13}, "plaso": {1, 6, 0}, "streamalert": {2, 2, 0}, "trailscraper": {1, 2, 0},
	}
	objects := 0
	for name, want := range readme {
		src := sources[name]
		if src == nil || len(src.keys) != want[0] || src.records != want[1] || src.noTime != want[2] {
			t.Fatalf("corpus source %s does not match its README %v", name, want)
		}
		objects += want[0]
	}

	// Upload each source under its own prefix and announce its objects in
	// notifications of up to seven keys, as CloudTrail batches them.
	var names []string
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := e.aws.UploadDir(e.ctx, e.bucket, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		keys := sources[name].keys
		for i := range keys {
			keys[i] = strings.TrimPrefix(keys[i], name+"/")
		}
		for i := 0; i < len(keys); i += 7 {
			e.publish(cloudTrailBody(e.bucket, keys[i:min(i+7, len(keys))]...))
		}
	}

	e.start(e.config())
	e.waitFor("every object in the ledger", 2*time.Minute, func() bool {
		return e.count(`SELECT count(*) FROM cloudtrail_objects`) == objects
	})
	e.waitFor("the queue to drain", 30*time.Second, func() bool { return e.depth(e.queueURL) == 0 })

	for _, name := range names {
		src := sources[name]
		var events, rejects, ledgerEvents, ledgerRejected int
		if err := e.pg.Pool().QueryRow(e.ctx, `SELECT
			(SELECT count(*) FROM cloudtrail_events WHERE s3_key = ANY($1)),
			(SELECT count(*) FROM cloudtrail_rejects WHERE s3_key = ANY($1)),
			(SELECT coalesce(sum(events), 0) FROM cloudtrail_objects WHERE s3_key = ANY($1)),
			(SELECT coalesce(sum(rejected), 0) FROM cloudtrail_objects WHERE s3_key = ANY($1))`,
			src.keys).Scan(&events, &rejects, &ledgerEvents, &ledgerRejected); err != nil {
			t.Fatal(err)
		}
		// An event copied into two sources belongs to whichever file came first.
		if events > len(src.distinct) || events == 0 && len(src.distinct) > 0 {
			t.Errorf("%s: %d events stored from its files, want up to %d distinct (eventID, eventTime)", name, events, len(src.distinct))
		}
		if want := src.noTime + src.badTime; rejects != want || ledgerRejected != want {
			t.Errorf("%s: %d rejects (ledger %d), want %d records without a parseable eventTime", name, rejects, ledgerRejected, want)
		}
		if ledgerEvents+ledgerRejected != src.records {
			t.Errorf("%s: ledger counts %d events + %d rejects, want %d records", name, ledgerEvents, ledgerRejected, src.records)
		}
	}
	union := map[string]bool{}
	for _, src := range sources {
		for k := range src.distinct {
			union[k] = true
		}
	}
	if n := e.count(`SELECT count(*) FROM cloudtrail_events`); n != len(union) {
		t.Errorf("%d events stored, want %d distinct (eventID, eventTime) across the corpus", n, len(union))
	}
	if n := e.count(`SELECT count(*) FROM (SELECT event_id, event_time FROM cloudtrail_events GROUP BY 1, 2 HAVING count(*) > 1) d`); n != 0 {
		t.Errorf("%d events stored twice", n)
	}
	if n := e.depth(e.dlqURL); n != 0 {
		t.Errorf("%d messages in the dead-letter queue, want 0", n)
	}
	// Records of the stratus-red-team set that analysts look for.
	for _, name := range []string{"StopLogging", "DeleteTrail", "ConsoleLogin"} {
		if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE event_name = $1`, name); n == 0 {
			t.Errorf("no %s event stored", name)
		}
	}
	if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE event_type = 'AwsCloudTrailInsight' AND event_name IS NOT NULL`); n != 1 {
		t.Errorf("%d Insight events with a name, want 1", n)
	}
}

// trailFile builds a gzip'd CloudTrail file of n records with IDs prefix-i.
func trailFile(prefix string, n int) []byte {
	var recs []map[string]any
	for i := range n {
		recs = append(recs, map[string]any{
			"eventVersion": "1.08", "eventID": fmt.Sprintf("%s-%d", prefix, i),
			"eventTime":   time.Date(2024, 3, 1, 12, i%60, 0, 0, time.UTC).Format(time.RFC3339),
			"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "eu-west-1",
			"sourceIPAddress": "198.51.100.7", "userIdentity": map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
		})
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_ = json.NewEncoder(zw).Encode(map[string]any{"Records": recs})
	_ = zw.Close()
	return buf.Bytes()
}

// TestNotificationFormats delivers one object in every notification shape
// AWS sends and checks each is ingested and deleted, while test events are
// deleted and garbage is left for the dead-letter queue.
func TestNotificationFormats(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, 30, 2)
	s3Event := func(key string) string {
		return fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
			"eventTime":"2024-03-01T12:00:00.000Z","eventName":"ObjectCreated:Put",
			"userIdentity":{"principalId":"AWS:AROAEXAMPLE:regionalDeliverySession"},
			"requestParameters":{"sourceIPAddress":"203.0.113.9"},"responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},
			"s3":{"s3SchemaVersion":"1.0","configurationId":"trail","bucket":{"name":%q,"ownerIdentity":{"principalId":"A"},"arn":"arn:aws:s3:::%s"},
			"object":{"key":%q,"size":1024,"eTag":"e","sequencer":"0055AED6DCD90281E5"}}}]}`, e.bucket, e.bucket, url.QueryEscape(key))
	}
	eventBridge := func(key string) string {
		return fmt.Sprintf(`{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"Object Created",
			"source":"aws.s3","account":"111122223333","time":"2024-03-01T12:00:00Z","region":"us-east-1",
			"resources":["arn:aws:s3:::%s"],"detail":{"version":"0","bucket":{"name":%q},
			"object":{"key":%q,"size":1024,"etag":"e","sequencer":"00617F08299329D189"},
			"request-id":"N4N7GDK58NMKJ12R","requester":"111122223333","source-ip-address":"203.0.113.15","reason":"PutObject"}}`,
			e.bucket, e.bucket, url.QueryEscape(key))
	}
	cases := []struct {
		name string
		key  string
		send func(key string)
	}{
		{"cloudtrail-sns", "AWSLogs/1/CloudTrail/a.json.gz", func(k string) { e.publish(cloudTrailBody(e.bucket, k)) }},
		{"cloudtrail-raw", "AWSLogs/1/CloudTrail/b.json.gz", func(k string) { e.send(cloudTrailBody(e.bucket, k)) }},
		{"s3-event", "AWSLogs/1/CloudTrail/with space+plus.json.gz", func(k string) { e.send(s3Event(k)) }},
		{"s3-event-sns", "AWSLogs/1/CloudTrail/d.json.gz", func(k string) { e.publish(s3Event(k)) }},
		{"eventbridge", "AWSLogs/1/CloudTrail/e.json.gz", func(k string) { e.send(eventBridge(k)) }},
	}
	for i, c := range cases {
		e.put(c.key, trailFile(c.name, 3+i))
		c.send(c.key)
	}
	e.send(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-03-01T12:00:00.000Z","Bucket":"` + e.bucket + `","RequestId":"R","HostId":"H"}`)
	e.publish("CloudTrail validation message.")
	e.send(`{"hello":"world"}`)

	e.start(e.config())
	e.waitFor("every format's object in the ledger", time.Minute, func() bool {
		return e.count(`SELECT count(*) FROM cloudtrail_objects`) == len(cases)
	})
	for i, c := range cases {
		if n := e.count(`SELECT count(*) FROM cloudtrail_events WHERE s3_key = $1`, c.key); n != 3+i {
			t.Errorf("%s: %d events from %q, want %d", c.name, n, c.key, 3+i)
		}
	}
	// Everything but the garbage is deleted; the garbage reaches the DLQ.
	e.waitFor("the garbage message in the dead-letter queue", 30*time.Second, func() bool {
		return e.depth(e.dlqURL) == 1 && e.depth(e.queueURL) == 0
	})
}

// TestRedeliveryAndDuplicateEventIDs sends the same notification twice and
// the same events in a second file: no row is added.
func TestRedeliveryAndDuplicateEventIDs(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, 30, 3)
	body := trailFile("dup", 20)
	e.put("AWSLogs/1/CloudTrail/first.json.gz", body)
	e.put("AWSLogs/2/CloudTrail/second.json.gz", body) // an organization trail's copy
	e.send(cloudTrailBody(e.bucket, "AWSLogs/1/CloudTrail/first.json.gz"))
	e.send(cloudTrailBody(e.bucket, "AWSLogs/1/CloudTrail/first.json.gz"))
	e.publish(cloudTrailBody(e.bucket, "AWSLogs/2/CloudTrail/second.json.gz"))

	e.start(e.config())
	e.waitFor("both objects in the ledger and the queue drained", time.Minute, func() bool {
		return e.count(`SELECT count(*) FROM cloudtrail_objects`) == 2 && e.depth(e.queueURL) == 0
	})
	if n := e.count(`SELECT count(*) FROM cloudtrail_events`); n != 20 {
		t.Errorf("%d events, want 20", n)
	}
	// Whichever file came first owns the events; the other one's are duplicates.
	if n := e.count(`SELECT count(DISTINCT s3_key) FROM cloudtrail_events`); n != 1 {
		t.Errorf("events attributed to %d files, want 1", n)
	}
	if n := e.count(`SELECT sum(inserted) FROM cloudtrail_objects`); n != 20 {
		t.Errorf("ledger counts %d inserted, want 20", n)
	}
	if n := e.count(`SELECT duplicates FROM cloudtrail_objects WHERE s3_key NOT IN (SELECT s3_key FROM cloudtrail_events)`); n != 20 {
		t.Errorf("ledger counts %d duplicates in the file that came second, want 20", n)
	}
}

// TestPoisonAndMissingObjects checks that a message that cannot be parsed
// and one naming a missing object are not deleted but reach the DLQ, while
// the good ones flow.
func TestPoisonAndMissingObjects(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, 30, 2)
	e.put("AWSLogs/1/CloudTrail/good.json.gz", trailFile("good", 5))
	e.put("AWSLogs/1/CloudTrail/notgzip.json.gz", []byte("this is not a log file"))
	e.send("not json at all")
	e.publish(`{"s3Bucket":` + "\x01")
	e.send(cloudTrailBody(e.bucket, "AWSLogs/1/CloudTrail/missing.json.gz"))
	e.send(cloudTrailBody(e.bucket, "AWSLogs/1/CloudTrail/notgzip.json.gz"))
	e.send(cloudTrailBody(e.bucket, "AWSLogs/1/CloudTrail/good.json.gz"))

	e.start(e.config())
	e.waitFor("four poison messages in the DLQ and the queue empty", time.Minute, func() bool {
		return e.depth(e.dlqURL) == 4 && e.depth(e.queueURL) == 0
	})
	if n := e.count(`SELECT count(*) FROM cloudtrail_events`); n != 5 {
		t.Errorf("%d events, want the good object's 5", n)
	}
	if n := e.count(`SELECT count(*) FROM cloudtrail_objects`); n != 1 {
		t.Errorf("%d ledger rows, want 1", n)
	}
}
