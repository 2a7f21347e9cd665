package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sigma"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// The end-to-end tests run the whole path on the local emulators: the
// stratus-red-team detonations of the shared corpus are uploaded to a
// bucket and announced on a queue as CloudTrail announces them; a worker
// stores their events, and with them the alerts of the built-in pack; a
// relay delivers the alerts to an SNS topic, which a queue subscribes to,
// and to a webhook receiver that checks every signature.

// receiver is a Standard Webhooks receiver: it verifies each request and
// counts deliveries by webhook-id. While down, it answers 500.
type receiver struct {
	key  []byte
	down atomic.Bool

	mu       sync.Mutex
	byID     map[string]int
	requests int
	refused  int // answered 500
	bad      []string
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	r := &receiver{key: []byte("an end-to-end secret, 32 bytes!!"), byID: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if err := alert.Verify(r.key, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.down.Load() {
		r.refused++
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	var b struct {
		Data alert.Payload `json:"data"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Data.ID != req.Header.Get("webhook-id") {
		r.bad = append(r.bad, fmt.Sprintf("body %s: %v", body, err))
	}
	r.byID[req.Header.Get("webhook-id")]++
}

func (r *receiver) counts() (ids map[string]int, requests, refused int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids = map[string]int{}
	for k, v := range r.byID {
		ids[k] = v
	}
	return ids, r.requests, r.refused, append([]string{}, r.bad...)
}

// pipeline is one end-to-end test's world.
type pipeline struct {
	t        *testing.T
	ctx      context.Context
	aws      *localaws.Stack
	pg       *sink.Postgres
	queueURL string
	buckets  []string
	sns      *snsQueue
	hook     *receiver
	hookURL  string
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	ctx := context.Background()
	s, err := localaws.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{t: t, ctx: ctx, aws: s, pg: migrated(t), sns: newSNSQueue(t)}
	if p.queueURL, _, err = s.CreateQueue(ctx, localaws.UniqueName("trail"), 30, 3); err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	p.hook, srv = newReceiver(t)
	p.hookURL = srv.URL
	p.pg.SetMatcher(alert.NewRules(sigma.Builtin()))
	return p
}

// upload puts the stratus-red-team files in a new bucket (a trail of its
// own) and announces them on the queue, seven keys a message as CloudTrail
// does; it returns the bucket.
func (p *pipeline) upload(dir string) (bucket string, keys []string) {
	p.t.Helper()
	bucket = localaws.UniqueName("trail")
	if err := p.aws.CreateBucket(p.ctx, bucket); err != nil {
		p.t.Fatal(err)
	}
	keys, err := p.aws.UploadDir(p.ctx, bucket, dir)
	if err != nil {
		p.t.Fatal(err)
	}
	p.buckets = append(p.buckets, bucket)
	p.announce(bucket, keys)
	return bucket, keys
}

func (p *pipeline) announce(bucket string, keys []string) {
	p.t.Helper()
	for i := 0; i < len(keys); i += 7 {
		b, _ := json.Marshal(map[string]any{"s3Bucket": bucket, "s3ObjectKey": keys[i:min(i+7, len(keys))]})
		if _, err := p.aws.SQS().SendMessage(p.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(p.queueURL),
			MessageBody: aws.String(string(b))}); err != nil {
			p.t.Fatal(err)
		}
	}
}

// worker runs a worker on the queue until the test ends.
func (p *pipeline) worker() {
	cfg := worker.Config{QueueURL: p.queueURL, Pollers: 2, ObjectConcurrency: 4, WaitTime: time.Second,
		VisibilityTimeout: 10 * time.Second, ShutdownGrace: 10 * time.Second,
		Backoff: retry.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 3}}
	log := zaptest.NewLogger(p.t)
	m := worker.NewMetrics(prometheus.NewRegistry())
	proc := worker.NewProcessor(cfg, p.aws.S3(), p.pg, p.pg, m, log)
	w := worker.New(cfg, p.aws.SQS(), proc, m, log)
	p.run(w.Run)
}

// relay runs a relay to the topic and the webhook until the test ends.
func (p *pipeline) relay() *alert.Relay {
	cfg := alert.Config{Poll: 50 * time.Millisecond, Batch: 20, Lease: 10 * time.Second, Timeout: 2 * time.Second,
		RetryBase: 100 * time.Millisecond, RetryMax: 400 * time.Millisecond}
	r := alert.NewRelay(cfg, p.pg, []alert.Destination{
		&alert.SNS{Client: p.aws.SNS(), TopicARN: p.sns.topicARN},
		&alert.Webhook{Client: &http.Client{Timeout: 5 * time.Second}, URL: p.hookURL, Key: p.hook.key},
	}, prometheus.NewRegistry(), zaptest.NewLogger(p.t))
	p.run(r.Run)
	return r
}

func (p *pipeline) run(fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(p.ctx)
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	p.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			p.t.Errorf("run: %v", err)
		}
	})
}

func (p *pipeline) count(q string, args ...any) int {
	p.t.Helper()
	return count(p.t, p.pg, q, args...)
}

func (p *pipeline) waitFor(what string, timeout time.Duration, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// expectedAlerts is the oracle: the built-in pack evaluated on every record
// of dir read with encoding/json, as "rule id/event id".
func expectedAlerts(t *testing.T, dir string) map[string]string {
	t.Helper()
	set := sigma.Builtin()
	out := map[string]string{}
	err := corpus.Records(dir, func(rel string, records []json.RawMessage) error {
		for _, raw := range records {
			var r struct{ EventID, EventSource, EventName string }
			if err := json.Unmarshal(raw, &r); err != nil || r.EventID == "" {
				return fmt.Errorf("%s: a record without eventID: %v", rel, err)
			}
			for _, m := range set.Match(r.EventSource, r.EventName, raw) {
				out[m.Rule.ID+"/"+r.EventID] = m.Rule.Title
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stored returns the stored alerts as "rule id/event id" → count.
func (p *pipeline) stored() map[string]int {
	p.t.Helper()
	rows, err := p.pg.Pool().Query(p.ctx, `SELECT rule_id || '/' || event_id, count(*) FROM cloudtrail_alerts GROUP BY 1`)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			p.t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

// TestAlertsEndToEnd: the stratus-red-team corpus raises the alerts the
// built-in pack finds in it, each stored once, also when every
// notification is delivered again and when a second trail delivers the
// same files; each alert reaches the SNS topic's subscriber and the
// webhook once, signed.
func TestAlertsEndToEnd(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(corpus.Dir(t), "s3", "stratus-red-team")
	want := expectedAlerts(t, dir)
	p := newPipeline(t)
	bucket, keys := p.upload(dir)
	p.worker()
	p.waitFor("every object in the ledger", 2*time.Minute, func() bool {
		return p.count(`SELECT count(*) FROM cloudtrail_objects`) == len(keys)
	})

	// Duplicates raise nothing: every notification again, and the same
	// files from a second trail's bucket.
	p.announce(bucket, keys)
	_, keys2 := p.upload(dir)
	p.waitFor("the second trail's objects in the ledger", 2*time.Minute, func() bool {
		return p.count(`SELECT count(*) FROM cloudtrail_objects`) == len(keys)+len(keys2)
	})
	p.waitFor("the redelivered notifications", time.Minute, func() bool {
		v, f, err := p.aws.QueueDepth(p.ctx, p.queueURL)
		return err == nil && v+f == 0
	})

	got := p.stored()
	for k, title := range want {
		if got[k] != 1 {
			t.Errorf("alert %s (%s) stored %d times, want once", k, title, got[k])
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("alert %s stored %d times, not expected", k, n)
		}
	}
	for _, title := range []string{"CloudTrail Logging Stopped", "CloudTrail Trail Deleted", "VPC Flow Logs Deleted",
		"Account Left the Organization", "CloudTrail Event Selectors Changed"} {
		if n := p.count(`SELECT count(*) FROM cloudtrail_alerts WHERE title = $1`, title); n != 1 {
			t.Errorf("%q: %d alerts, want 1", title, n)
		}
	}
	t.Logf("%d alerts stored for %d expected matches", len(got), len(want))

	// Delivery: the corpus is from 2024, older than any sensible
	// PGTRAIL_ALERT_MAX_AGE: this relay sends whatever the age.
	p.relay()
	p.waitFor("every alert settled", time.Minute, func() bool {
		return p.count(`SELECT count(*) FROM cloudtrail_alerts WHERE settled_at IS NULL`) == 0
	})
	ids, requests, _, bad := p.hook.counts()
	if len(bad) > 0 {
		t.Errorf("the receiver refused %d requests: %v", len(bad), bad[:min(3, len(bad))])
	}
	if len(ids) != len(want) || requests != len(want) {
		t.Errorf("webhook: %d alerts in %d requests, want %d once each", len(ids), requests, len(want))
	}
	msgs := p.sns.receive(t)
	seen := map[string]int{}
	for i := range msgs {
		seen[msgs[i].attr("alert_id")]++
	}
	if len(msgs) != len(want) || len(seen) != len(want) {
		t.Errorf("SNS subscriber: %d messages for %d alerts, want %d once each", len(msgs), len(seen), len(want))
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("alert %s: webhook once, SNS %d times", id, seen[id])
		}
	}
	t.Logf("delivered: webhook %d, SNS %d", len(ids), len(msgs))
}

// TestAlertsOutage: a webhook that answers 500 delays its alerts and loses
// none: once it answers again each is delivered once; the SNS topic, which
// worked throughout, got each once.
func TestAlertsOutage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(corpus.Dir(t), "s3", "stratus-red-team")
	want := expectedAlerts(t, dir)
	p := newPipeline(t)
	p.hook.down.Store(true)
	_, keys := p.upload(dir)
	p.worker()
	p.relay()
	p.waitFor("every object in the ledger", 2*time.Minute, func() bool {
		return p.count(`SELECT count(*) FROM cloudtrail_objects`) == len(keys)
	})
	p.waitFor("every alert through SNS, and the webhook tried again and again", time.Minute, func() bool {
		_, _, refused, _ := p.hook.counts()
		return p.count(`SELECT count(*) FROM cloudtrail_alert_deliveries WHERE destination = 'sns' AND delivered_at IS NOT NULL`) == len(want) &&
			refused >= 5
	})
	if n := p.count(`SELECT count(*) FROM cloudtrail_alerts WHERE settled_at IS NULL`); n != len(want) {
		t.Errorf("%d alerts waiting during the outage, want all %d", n, len(want))
	}
	_, _, refused, _ := p.hook.counts()

	p.hook.down.Store(false)
	p.waitFor("every alert settled after the outage", time.Minute, func() bool {
		return p.count(`SELECT count(*) FROM cloudtrail_alerts WHERE settled_at IS NULL`) == 0
	})
	ids, _, _, bad := p.hook.counts()
	if len(bad) > 0 {
		t.Errorf("bad requests: %v", bad[:min(3, len(bad))])
	}
	if len(ids) != len(want) {
		t.Errorf("webhook: %d alerts delivered after the outage, want %d", len(ids), len(want))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("alert %s delivered %d times", id, n)
		}
	}
	msgs := p.sns.receive(t)
	if len(msgs) != len(want) {
		t.Errorf("SNS: %d messages, want %d", len(msgs), len(want))
	}
	t.Logf("outage: %d attempts refused, then %d alerts delivered once each; SNS %d", refused, len(ids), len(msgs))
}
