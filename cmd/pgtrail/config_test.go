package main

import (
	"bytes"
	"context"
	"reflect"
	"regexp"
	"strconv"
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

// TestWorkerConfigComplete checks that the worker's configuration, built
// from the environment's defaults, is complete: the worker's own
// stand-ins for zero values (worker.Config.WithDefaults) change nothing
// but the two that are derived, not set: MaxInFlight, whose 0 means
// 10 × PGTRAIL_POLLERS, and the retry backoff, which no variable sets.
func TestWorkerConfigComplete(t *testing.T) {
	cfg, err := loadConfig(context.Background(), envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://x@h/db"}))
	if err != nil {
		t.Fatal(err)
	}
	given := cfg.worker()
	filled := given.WithDefaults()
	if filled.MaxInFlight != 10*given.Pollers {
		t.Errorf("MaxInFlight %d, want 10 × %d pollers", filled.MaxInFlight, given.Pollers)
	}
	filled.MaxInFlight, filled.Backoff = given.MaxInFlight, given.Backoff
	if !reflect.DeepEqual(filled, given) {
		t.Errorf("the worker's defaults differ from the environment's:\n worker %+v\n env    %+v", filled, given)
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

// TestConfigTrimmed: values are read without the spaces around them, and a
// number, duration or boolean set to nothing takes its default.
func TestConfigTrimmed(t *testing.T) {
	cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(map[string]string{
		"DATABASE_URL":             " postgres://x@h/db\n",
		"PGTRAIL_POLLERS":          "2 ",
		"PGTRAIL_WAIT_TIME":        "\t5s",
		"S3_FORCE_PATH_STYLE":      " true ",
		"PGTRAIL_LOG_LEVEL":        "debug\n",
		"PGTRAIL_ALLOWED_BUCKETS":  " a, b ",
		"PGTRAIL_MIGRATE":          "",
		"PGTRAIL_SHUTDOWN_GRACE":   " ",
		"PGTRAIL_RETENTION_DAYS":   "",
		"PGTRAIL_HTTP_ADDR":        "",
		"PGTRAIL_MAX_RECORD_BYTES": " 1024 ",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DatabaseURL != "postgres://x@h/db" || cfg.Pollers != 2 || cfg.WaitTime != 5*time.Second ||
		!cfg.S3ForcePathStyle || cfg.LogLevel != "debug" || cfg.MaxRecordBytes != 1024 {
		t.Errorf("values not trimmed: %+v", cfg)
	}
	if len(cfg.AllowedBuckets) != 2 || cfg.AllowedBuckets[0] != "a" || cfg.AllowedBuckets[1] != "b" {
		t.Errorf("PGTRAIL_ALLOWED_BUCKETS=\" a, b \" gives %q", cfg.AllowedBuckets)
	}
	if !cfg.Migrate || cfg.ShutdownGrace != 30*time.Second || cfg.RetentionDays != 0 {
		t.Errorf("empty values did not take their defaults: migrate %v, grace %s", cfg.Migrate, cfg.ShutdownGrace)
	}
	if cfg.HTTPAddr != "" {
		t.Errorf("PGTRAIL_HTTP_ADDR= gives %q; want it empty (disabled)", cfg.HTTPAddr)
	}
}

// TestConfigParseErrors: a value that does not parse is refused with one
// line naming the variable, what it takes, and what it got.
func TestConfigParseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ value, want string }{
		"PGTRAIL_POLLERS":            {"abc", "PGTRAIL_POLLERS: want an integer from 1 to 100, got abc"},
		"PGTRAIL_OBJECT_CONCURRENCY": {"8.5", "PGTRAIL_OBJECT_CONCURRENCY: want an integer from 1 to 1000, got 8.5"},
		"PGTRAIL_MAX_OBJECT_BYTES":   {"2GB", "PGTRAIL_MAX_OBJECT_BYTES: want an integer of 1024 or more, got 2GB"},
		"PGTRAIL_WAIT_TIME":          {"20", "PGTRAIL_WAIT_TIME: want a duration from 1s to 20s, got 20"},
		"PGTRAIL_SHUTDOWN_GRACE":     {" soon ", "PGTRAIL_SHUTDOWN_GRACE: want a duration of 0s or more, got soon"},
		"PGTRAIL_MIGRATE":            {"yes please", "PGTRAIL_MIGRATE: want true or false, got yes please"},
		"PGTRAIL_RETENTION_DAYS":     {"99999999999999999999", "PGTRAIL_RETENTION_DAYS: want an integer from 0 (keep everything) to 36500, got 99999999999999999999"},
		// Values that parse but are out of range say the same.
		"PGTRAIL_VISIBILITY_TIMEOUT": {"1s", "PGTRAIL_VISIBILITY_TIMEOUT: want a duration from 2s to 12h, got 1s"},
		"PGTRAIL_LOG_FORMAT":         {"xml", "PGTRAIL_LOG_FORMAT: want json or console, got xml"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := map[string]string{"DATABASE_URL": "postgres://x@h/db", name: tc.value}
			if code := Main(t.Context(), []string{"migrate"}, envconfig.MapLookuper(env), &stdout, &stderr); code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if got, want := stderr.String(), "pgtrail: config: "+tc.want+"\n"; got != want {
				t.Errorf("%s=%q:\n got %q\nwant %q", name, tc.value, got, want)
			}
		})
	}
}

// TestConfigWantIsValidate: what a variable's want tag says it takes is
// what Validate accepts: the bounds it names pass, one step beyond fails.
func TestConfigWantIsValidate(t *testing.T) {
	rangeRE := regexp.MustCompile(`^(an integer|a duration) from (\d+\w*)(?: \([^)]*\))? to (\d+\w*)$`)
	for name, v := range variables {
		if v.valued && v.want == "" {
			t.Errorf("%s has no want tag: a value that does not parse would not say what it takes", name)
		}
		m := rangeRE.FindStringSubmatch(v.want)
		if m == nil {
			continue
		}
		step := func(s string, d int) string {
			if m[1] == "an integer" {
				n, _ := strconv.Atoi(s)
				return strconv.Itoa(n + d)
			}
			dur, _ := time.ParseDuration(s)
			return (dur + time.Duration(d)*time.Millisecond).String()
		}
		for value, ok := range map[string]bool{m[2]: true, m[3]: true, step(m[2], -1): false, step(m[3], 1): false} {
			env := map[string]string{"DATABASE_URL": "postgres://x@h/db", name: value}
			if name == "PGTRAIL_VISIBILITY_TIMEOUT" {
				env["PGTRAIL_MAX_VISIBILITY"] = "12h"
			}
			_, err := loadConfig(t.Context(), envconfig.MapLookuper(env))
			if ok && err != nil {
				t.Errorf("%s=%s, a bound of %q, is refused: %v", name, value, v.want, err)
			}
			if !ok && (err == nil || !strings.Contains(err.Error(), name+": want "+v.want+", got ")) {
				t.Errorf("%s=%s, beyond %q: %v", name, value, v.want, err)
			}
		}
	}
}
