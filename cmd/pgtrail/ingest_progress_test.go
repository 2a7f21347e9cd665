package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// TestIngestProgressLogLines ingests a corpus source with stderr not a
// terminal and a short interval: structured progress lines carry the
// figures, the last of them the whole run's, and the summary is unchanged.
func TestIngestProgressLogLines(t *testing.T) {
	t.Parallel()
	stratus := filepath.Join(corpus.Dir(t), "s3", "stratus-red-team")
	env := envconfig.MapLookuper(map[string]string{"DATABASE_URL": pgtest.New(t), "PGTRAIL_LOG_LEVEL": "info", "PGTRAIL_LOG_FORMAT": "json"})

	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"ingest", "-progress-every", "1ms", stratus}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d; stderr: %s", code, stderr.String())
	}
	if want := "files: 35 read, 0 failed\nevents: 310 read, 310 inserted, 0 duplicates skipped\nrecords rejected: 0\n"; stdout.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", stdout.String(), want)
	}
	var lines []map[string]any
	for _, l := range strings.Split(stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "ingest progress" {
			lines = append(lines, m)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no progress line in stderr:\n%s", stderr.String())
	}
	for _, k := range []string{"files_done", "files_total", "files_failed", "events", "inserted", "duplicates", "rejects", "bytes_done", "bytes_total", "files_per_second", "events_per_second", "bytes_per_second", "elapsed"} {
		if _, ok := lines[0][k]; !ok {
			t.Errorf("progress line lacks %s: %v", k, lines[0])
		}
	}
	last := lines[len(lines)-1]
	for k, want := range map[string]float64{"files_done": 35, "files_total": 35, "events": 310, "inserted": 310, "duplicates": 0, "rejects": 0} {
		if last[k] != want {
			t.Errorf("last progress line: %s = %v, want %v", k, last[k], want)
		}
	}
	if last["bytes_done"] != last["bytes_total"] || last["bytes_total"].(float64) <= 0 {
		t.Errorf("last progress line: bytes %v of %v", last["bytes_done"], last["bytes_total"])
	}
}
