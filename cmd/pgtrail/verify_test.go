package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/digesttest"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// TestVerifyCommand stores digest verdicts (as the worker does, through
// the sink) over a log file ingested by pgtrail ingest, and checks what
// pgtrail verify and pgtrail status report of them: exit status 0 while
// everything is valid, 1 once a digest is invalid or a listed log file is
// missing.
func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.New(t)
	env := envconfig.MapLookuper(map[string]string{"DATABASE_URL": dbURL, "PGTRAIL_LOG_LEVEL": "warn"})
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(ctx, args, env, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, _, stderr := run("migrate"); code != 0 {
		t.Fatalf("migrate: %d %s", code, stderr)
	}
	tr := &digesttest.Trail{Bucket: "trail-bucket", AccountID: "111122223333", Region: "eu-west-1", Name: "main", HomeRegion: "eu-west-1"}
	log := tr.LogFile(time.Date(2026, 3, 1, 0, 10, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "log.json.gz")
	if err := os.WriteFile(path, log.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run("ingest", path); code != 0 {
		t.Fatalf("ingest: %d %s", code, stderr)
	}
	sum := sha256.Sum256(digesttest.Gunzip(t, log.Body))

	pg, err := sink.Open(ctx, sink.Config{URL: dbURL}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	chain := cloudtrail.DigestChain{AccountID: tr.AccountID, Region: tr.Region, Trail: tr.Name, HomeRegion: tr.HomeRegion}
	digest := func(end time.Time, reason string, files ...cloudtrail.DigestLogFile) {
		t.Helper()
		r := sink.DigestRecord{Bucket: tr.Bucket, Key: "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/" + end.Format(time.RFC3339),
			Chain: chain, Start: end.Add(-time.Hour), End: end, Valid: reason == "", Reason: reason, GapBefore: reason == "",
			ChainStart: end.Add(-time.Hour), LogFiles: len(files)}
		if _, err := pg.RecordDigest(ctx, r, files, nil); err != nil {
			t.Fatal(err)
		}
	}
	h1 := time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)
	digest(h1, "", cloudtrail.DigestLogFile{S3Object: path, HashValue: hex.EncodeToString(sum[:])})

	code, out, stderr := run("verify", "-from", "2026-03-01", "-to", "2026-03-01")
	if code != 0 || !strings.Contains(out, "1/1 digest files valid\n") || !strings.Contains(out, "1/1 log files valid\n") {
		t.Fatalf("all valid: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = run("verify", "-from", "2026-03-02")
	if code != 0 || !strings.Contains(out, "0/0 digest files valid") {
		t.Errorf("a period without digests: exit %d\n%s", code, out)
	}

	digest(h1.Add(time.Hour), cloudtrail.ErrDigestSignature.Error())
	digest(h1.Add(4*time.Hour), "", cloudtrail.DigestLogFile{S3Bucket: tr.Bucket, S3Object: "gone.json.gz", HashValue: strings.Repeat("0", 64)})
	code, out, _ = run("verify", "-from", "2026-03-01", "-accounts", "111122223333", "-regions", "eu-west-1")
	for _, want := range []string{
		"Digest file\ts3://trail-bucket/AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026-03-01T02:00:00Z\tINVALID: signature verification failed\n",
		"Log file\ts3://trail-bucket/gone.json.gz\tINVALID: not found\n",
		"2/3 digest files valid, 1/3 digest files INVALID\n",
		"1/2 log files valid, 1/2 log files not found\n",
		"No log files were delivered by CloudTrail between 2026-03-01T02:00:00Z and 2026-03-01T04:00:00Z",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("exit status %d with failures, want 1", code)
	}
	code, out, _ = run("verify", "-from", "2026-03-01", "-regions", "us-east-1", "-json")
	var r sink.VerifyReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || len(r.Digests) != 0 {
		t.Errorf("-json for another region: exit %d, %v\n%s", code, err, out)
	}
	code, out, _ = run("verify", "-from", "2026-03-01", "-json")
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 || len(r.Digests) != 3 || r.Failures() != 2 {
		t.Errorf("-json: exit %d, %v, %d digests, %d failures\n%s", code, err, len(r.Digests), r.Failures(), out)
	}
	if code, _, stderr := run("verify"); code != 2 || !strings.Contains(stderr, "-from is required") {
		t.Errorf("no -from: exit %d: %s", code, stderr)
	}

	_, out, _ = run("status")
	if !strings.Contains(out, "3 digests checked in the last day: 2 valid, 1 invalid") || !strings.Contains(out, "FAILED: 1 invalid digests") {
		t.Errorf("status:\n%s", out)
	}
}
