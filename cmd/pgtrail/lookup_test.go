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

// TestLookupCommand ingests plaso's events and looks them up in process:
// the table by default, the raw records with -json, refusals with status 2.
func TestLookupCommand(t *testing.T) {
	t.Parallel()
	plaso := filepath.Join(corpus.Dir(t), "s3", "plaso")
	env := envconfig.MapLookuper(map[string]string{"DATABASE_URL": pgtest.New(t), "PGTRAIL_LOG_LEVEL": "warn"})
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), args, env, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, _, stderr := run("ingest", plaso); code != 0 {
		t.Fatalf("ingest: %d %s", code, stderr)
	}

	code, out, stderr := run("lookup", "-attr", "Username=fakeusername", "-attr", "ReadOnly=false", "-from", "2022-02-07", "-to", "2022-02-08", "-limit", "2")
	if code != 0 {
		t.Fatalf("exit status %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "EVENT TIME") ||
		!strings.Contains(lines[1], "TerminateInstances") || !strings.Contains(lines[1], "EC2::Instance i-01234567890123456") ||
		!strings.Contains(lines[2], "StopInstances") {
		t.Errorf("table:\n%s", out)
	}

	code, out, stderr = run("lookup", "-attr", "ResourceType=AWS::EC2::KeyPair", "-json")
	if code != 0 {
		t.Fatalf("exit status %d: %s", code, stderr)
	}
	var rec struct{ EventName string }
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rec); err != nil || rec.EventName != "RunInstances" {
		t.Errorf("-json: %v\n%s", err, out)
	}

	for _, args := range [][]string{
		{"lookup", "-attr", "Region=us-east-1"},
		{"lookup", "-attr", "ReadOnly=maybe"},
		{"lookup", "-attr", "Username"},
		{"lookup", "-from", "last tuesday"},
		{"lookup", "-limit", "0"},
	} {
		if code, _, stderr := run(args...); code != 2 {
			t.Errorf("%v: exit status %d, want 2: %s", args, code, stderr)
		}
	}
}
