package main

import (
	"github.com/pgtrail/pgtrail/internal/corpus"

	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// TestIngestNamesBadFilesAndCarriesOn ingests a corpus source with a broken
// file beside it: the good files are stored, the bad one is named, and the
// exit status is 1. A second run inserts nothing.
func TestIngestNamesBadFilesAndCarriesOn(t *testing.T) {
	t.Parallel()
	stratus := filepath.Join(corpus.Dir(t), "s3", "stratus-red-team")
	bad := filepath.Join(t.TempDir(), "broken.json.gz")
	if err := os.WriteFile(bad, []byte("\x1f\x8b\x08garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envconfig.MapLookuper(map[string]string{"DATABASE_URL": pgtest.New(t), "PGTRAIL_LOG_LEVEL": "warn"})

	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"ingest", stratus, bad}, env, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit status %d, want 1; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), bad) {
		t.Errorf("stderr does not name %s: %s", bad, stderr.String())
	}
	for _, want := range []string{"files: 35 read, 1 failed", "events: 310 read, 310 inserted, 0 duplicates skipped", "records rejected: 0"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}

	stdout.Reset()
	stderr.Reset()
	if code := Main(context.Background(), []string{"ingest", stratus}, env, &stdout, &stderr); code != 0 {
		t.Errorf("second run: exit status %d; stderr: %s", code, stderr.String())
	}
	if want := "events: 310 read, 0 inserted, 310 duplicates skipped"; !strings.Contains(stdout.String(), want) {
		t.Errorf("second run summary lacks %q:\n%s", want, stdout.String())
	}
}

// TestCPUProfile runs ingest with PGTRAIL_CPU_PROFILE: the file is a pprof
// profile (gzip'd); a path that cannot be created is refused by name.
func TestCPUProfile(t *testing.T) {
	stratus := filepath.Join(corpus.Dir(t), "s3", "stratus-red-team")
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	env := envconfig.MapLookuper(map[string]string{"DATABASE_URL": pgtest.New(t), "PGTRAIL_LOG_LEVEL": "warn", "PGTRAIL_CPU_PROFILE": path})
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"ingest", stratus}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d; stderr: %s", code, stderr.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 64 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("%s is not a pprof profile: %d bytes, % x…", path, len(b), b[:min(len(b), 4)])
	}

	env = envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/db", "PGTRAIL_CPU_PROFILE": filepath.Join(t.TempDir(), "missing", "cpu.pprof")})
	stderr.Reset()
	if code := Main(context.Background(), []string{"ingest", stratus}, env, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "PGTRAIL_CPU_PROFILE") {
		t.Errorf("unwritable profile: exit status %d, stderr %q; want 2 naming PGTRAIL_CPU_PROFILE", code, stderr.String())
	}
}
