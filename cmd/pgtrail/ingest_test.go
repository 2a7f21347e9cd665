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
