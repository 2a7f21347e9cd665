package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(context.Background(), envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://x@h/db"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pollers != 2 || cfg.ObjectConcurrency != 8 || cfg.VisibilityTimeout != time.Minute ||
		cfg.WaitTime != 20*time.Second || cfg.LogFormat != "json" || !cfg.Migrate || cfg.HTTPAddr != ":9090" {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	if got := cfg.dbMaxConns(); got != 12 {
		t.Errorf("pool size %d, want object concurrency + 4 = 12", got)
	}
}

// TestBadConfigNamesTheVariable checks that every bad value stops the
// process at start with a line naming the variable.
func TestBadConfigNamesTheVariable(t *testing.T) {
	cases := map[string]string{
		"PGTRAIL_POLLERS":            "0",
		"PGTRAIL_OBJECT_CONCURRENCY": "many",
		"PGTRAIL_VISIBILITY_TIMEOUT": "1s",
		"PGTRAIL_MAX_VISIBILITY":     "5s",
		"PGTRAIL_WAIT_TIME":          "30s",
		"PGTRAIL_LOG_LEVEL":          "loud",
		"PGTRAIL_LOG_FORMAT":         "xml",
		"PGTRAIL_MAX_RECORD_BYTES":   "10",
		"PGTRAIL_SHUTDOWN_GRACE":     "soon",
		"DATABASE_URL":               "",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": "postgres://x@h/db", name: value}
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), []string{"migrate"}, envconfig.MapLookuper(env), &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), name) {
				t.Errorf("error does not name %s: %q", name, stderr.String())
			}
		})
	}
}

func TestRunNeedsQueueURL(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"run"}, envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/db"}), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "SQS_QUEUE_URL") {
		t.Errorf("run without SQS_QUEUE_URL: status %d, %q", code, stderr.String())
	}
}

// TestHTTPClientKeepsConnections: the AWS client keeps an idle connection
// for every request that can be in progress, so that a busy worker does not
// dial (and, against AWS, shake hands) again for each object.
func TestHTTPClientKeepsConnections(t *testing.T) {
	for _, tc := range []struct {
		concurrency, pollers, inFlight, want int
	}{
		{8, 2, 0, 26},    // defaults: 2 polls + 20 messages in flight + 4
		{64, 2, 0, 68},   // S3's GetObjects need the most
		{8, 4, 100, 108}, // SQS's heartbeats do
	} {
		cfg := Config{ObjectConcurrency: tc.concurrency, Pollers: tc.pollers, MaxInFlight: tc.inFlight}
		tr := cfg.httpClient().GetTransport()
		if tr.MaxIdleConnsPerHost != tc.want || tr.MaxIdleConns < tc.want {
			t.Errorf("%+v: MaxIdleConnsPerHost %d, MaxIdleConns %d; want %d per host", tc, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tc.want)
		}
	}
}
