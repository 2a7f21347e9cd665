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

// TestZeroValues: a variable set to 0 means what the README says 0 means,
// or is refused; no 0 is silently replaced by a default.
func TestZeroValues(t *testing.T) {
	load := func(t *testing.T, name, value string) *Config {
		t.Helper()
		cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://x@h/db", name: value}))
		if err != nil {
			t.Fatalf("%s=%s: %v", name, value, err)
		}
		return cfg
	}
	t.Run("PGTRAIL_SHUTDOWN_GRACE", func(t *testing.T) {
		if got := load(t, "PGTRAIL_SHUTDOWN_GRACE", "0s").worker().WithDefaults().ShutdownGrace; got >= 0 {
			t.Errorf("PGTRAIL_SHUTDOWN_GRACE=0s gives the worker a grace of %s; want none", got)
		}
		if got := load(t, "PGTRAIL_SHUTDOWN_GRACE", "5s").worker().WithDefaults().ShutdownGrace; got != 5*time.Second {
			t.Errorf("PGTRAIL_SHUTDOWN_GRACE=5s gives the worker a grace of %s", got)
		}
	})
	t.Run("PGTRAIL_MAX_IN_FLIGHT", func(t *testing.T) {
		if got := load(t, "PGTRAIL_MAX_IN_FLIGHT", "0").worker().WithDefaults().MaxInFlight; got != 20 {
			t.Errorf("PGTRAIL_MAX_IN_FLIGHT=0 gives %d messages in flight; want 10 × pollers = 20", got)
		}
	})
	t.Run("PGTRAIL_DB_MAX_CONNS", func(t *testing.T) {
		if got := load(t, "PGTRAIL_DB_MAX_CONNS", "0").dbMaxConns(); got != 12 {
			t.Errorf("PGTRAIL_DB_MAX_CONNS=0 gives a pool of %d; want object concurrency + 4 = 12", got)
		}
	})
	t.Run("PGTRAIL_RETENTION_DAYS", func(t *testing.T) {
		if got := load(t, "PGTRAIL_RETENTION_DAYS", "0").RetentionDays; got != 0 {
			t.Errorf("PGTRAIL_RETENTION_DAYS=0 gives %d days; want 0, keep everything", got)
		}
	})
	// The worker and the processor would replace these zeros with their
	// defaults: they are refused at start instead.
	for _, name := range []string{"PGTRAIL_POLLERS", "PGTRAIL_OBJECT_CONCURRENCY", "PGTRAIL_WAIT_TIME",
		"PGTRAIL_VISIBILITY_TIMEOUT", "PGTRAIL_MAX_VISIBILITY", "PGTRAIL_S3_STALL_TIMEOUT",
		"PGTRAIL_MAX_OBJECT_BYTES", "PGTRAIL_MAX_RECORD_BYTES"} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t.Context(), envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://x@h/db", name: "0"}))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=0: %v; want it refused, naming the variable", name, err)
			}
		})
	}
}
