package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// alwaysExported are the pgtrail metrics a worker exports from its start.
var alwaysExported = []string{
	"pgtrail_messages_received_total",
	"pgtrail_messages_deleted_total",
	"pgtrail_messages_failed_total",
	"pgtrail_receive_errors_total",
	"pgtrail_messages_in_flight",
	"pgtrail_oldest_message_age_seconds",
	"pgtrail_message_age_seconds",
	"pgtrail_objects_in_flight",
	"pgtrail_bytes_fetched_total",
	"pgtrail_events_total",
	"pgtrail_visibility_extensions_total",
	"pgtrail_pollers_paused",
	"pgtrail_db_pool_connections",
	"pgtrail_db_pool_idle_connections",
	"pgtrail_db_pool_acquired_connections",
	"pgtrail_db_pool_max_connections",
	"pgtrail_db_pool_acquires_total",
	"pgtrail_db_pool_acquire_wait_seconds_total",
	"pgtrail_db_pool_empty_acquires_total",
	"go_goroutines",
	"process_resident_memory_bytes",
}

// exportedOnceUsed are the labelled pgtrail metrics that appear with their
// first observation.
var exportedOnceUsed = []string{
	"pgtrail_objects_processed_total",
	"pgtrail_stage_duration_seconds",
}

// TestMetrics runs the daemon against the local stack and a real database,
// scrapes /metrics before and after it processes CloudTrail notifications,
// and checks /healthz, /readyz and that the status command sees the work.
func TestMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon")
	}
	stack := useLocalAWS(t)
	ctx := t.Context()
	db := pgtest.New(t)

	bucket := localaws.UniqueName("trail")
	if err := stack.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	keys, err := stack.UploadDir(ctx, bucket, filepath.Join(corpus.Dir(t), "s3", "stratus-red-team"))
	if err != nil {
		t.Fatal(err)
	}
	queue, _, err := stack.CreateQueue(ctx, localaws.UniqueName("metrics"), 30, 3)
	if err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL":        db,
		"SQS_QUEUE_URL":       queue,
		"S3_FORCE_PATH_STYLE": "true",
		"PGTRAIL_HTTP_ADDR":   addr,
		"PGTRAIL_LOG_LEVEL":   "warn",
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stderr lockedBuffer
	exited := make(chan int, 1)
	go func() { exited <- Main(runCtx, []string{"run"}, envconfig.MapLookuper(env), io.Discard, &stderr) }()
	base := "http://" + addr

	// The HTTP server starts once the database is migrated.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := get(t, base+"/healthz"); code == http.StatusOK {
			break
		}
		select {
		case code := <-exited:
			t.Fatalf("pgtrail run exited with %d before serving\n%s", code, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer within a minute\n%s", stderr.String())
		}
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}

	before := scrape(t, base)
	for _, name := range alwaysExported {
		if before[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if v := value(before, "pgtrail_messages_received_total", nil); v != 0 {
		t.Errorf("messages received before any was sent = %v", v)
	}
	if got, want := value(before, "pgtrail_db_pool_max_connections", nil), 12.0; got != want {
		t.Errorf("pgtrail_db_pool_max_connections = %v, want %v (PGTRAIL_OBJECT_CONCURRENCY+4)", got, want)
	}
	for _, name := range []string{"pgtrail_messages_received_total", "pgtrail_events_total", "pgtrail_bytes_fetched_total"} {
		if typ := before[name].GetType(); typ != dto.MetricType_COUNTER {
			t.Errorf("%s is a %s, want a counter", name, typ)
		}
	}

	// CloudTrail's own notification format, a few keys per message.
	messages := 0
	for i := 0; i < len(keys); i += 10 {
		body, err := json.Marshal(map[string]any{"s3Bucket": bucket, "s3ObjectKey": keys[i:min(i+10, len(keys))]})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stack.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(string(body))}); err != nil {
			t.Fatal(err)
		}
		messages++
	}

	var after map[string]*dto.MetricFamily
	for deadline := time.Now().Add(90 * time.Second); ; {
		after = scrape(t, base)
		if value(after, "pgtrail_messages_deleted_total", nil) >= float64(messages) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d messages deleted after 90s\n%s", value(after, "pgtrail_messages_deleted_total", nil), messages, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, name := range append(alwaysExported, exportedOnceUsed...) {
		if after[name] == nil {
			t.Errorf("/metrics lacks %s after processing", name)
		}
	}
	moved := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if got := value(after, name, labels); got < want {
			t.Errorf("%s%v = %v, want at least %v", name, labels, got, want)
		}
	}
	moved("pgtrail_messages_received_total", nil, float64(messages))
	moved("pgtrail_events_total", map[string]string{"outcome": "inserted"}, 1)
	moved("pgtrail_bytes_fetched_total", nil, 1)
	moved("pgtrail_db_pool_acquires_total", nil, 1)
	processed := 0.0
	for _, outcome := range []string{"ok", "already_processed", "digest"} {
		processed += value(after, "pgtrail_objects_processed_total", map[string]string{"outcome": outcome})
	}
	if processed != float64(len(keys)) {
		t.Errorf("objects processed = %v, want %d", processed, len(keys))
	}
	for _, reason := range []string{"unrecognized", "permanent", "transient", "shutdown"} {
		if v := value(after, "pgtrail_messages_failed_total", map[string]string{"reason": reason}); v != 0 {
			t.Errorf("pgtrail_messages_failed_total{reason=%q} = %v, want 0", reason, v)
		}
	}
	if v := value(after, "pgtrail_objects_processed_total", map[string]string{"outcome": "failed"}); v != 0 {
		t.Errorf("objects failed = %v", v)
	}
	for _, stage := range []string{"fetch", "decode", "write"} {
		if n := histogramCount(after, "pgtrail_stage_duration_seconds", map[string]string{"stage": stage}); n == 0 {
			t.Errorf("pgtrail_stage_duration_seconds{stage=%q} has no observation", stage)
		}
	}
	if n := histogramCount(after, "pgtrail_message_age_seconds", nil); n < uint64(messages) {
		t.Errorf("pgtrail_message_age_seconds has %d observations, want %d (SentTimestamp)", n, messages)
	}
	for _, gauge := range []string{"pgtrail_messages_in_flight", "pgtrail_objects_in_flight"} {
		if v := value(after, gauge, nil); v != 0 {
			t.Errorf("%s = %v when idle", gauge, v)
		}
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after work = %d %q", code, body)
	}

	// The on-call view shows what the worker just did.
	code, out, _ := runCommand(t, ctx, map[string]string{"DATABASE_URL": db, "SQS_QUEUE_URL": queue}, "status", "-timeout", "5s")
	if code != 0 {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	wantLines(t, out,
		"messages", "0 waiting",
		"last hour", fmt.Sprintf("from %d objects", len(keys)),
		"last object", "s3://"+bucket+"/",
		"partitions", "daily",
	)

	// The container health check asks the running worker.
	if code, _, stderr := runCommand(t, ctx, map[string]string{"DATABASE_URL": db, "PGTRAIL_HTTP_ADDR": addr}, "status", "-healthz"); code != 0 {
		t.Errorf("status -healthz: exit %d\n%s", code, stderr)
	}

	stop()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("pgtrail run exited with %d after SIGTERM-like cancel\n%s", code, stderr.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatal("pgtrail run did not stop within 45s of cancel")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the HTTP server still answers after run returned")
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// get fetches url and returns its status and body; 0 when nothing answers.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// scrape parses /metrics.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d %q", code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// find returns the metric of the family whose labels include labels.
func find(families map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value returns a counter's or gauge's value, 0 when it is missing (a
// labelled counter appears with its first increment).
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	m := find(families, name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// histogramCount returns a histogram's sample count, 0 when it is missing.
func histogramCount(families map[string]*dto.MetricFamily, name string, labels map[string]string) uint64 {
	return find(families, name, labels).GetHistogram().GetSampleCount()
}
