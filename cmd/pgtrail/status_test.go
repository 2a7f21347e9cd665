package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// lockedBuffer is a bytes.Buffer that a running command and the test may
// use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runCommand runs one pgtrail command in-process with env as its whole
// configuration and returns its exit status and output.
func runCommand(t *testing.T, ctx context.Context, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut lockedBuffer
	code = Main(ctx, args, envconfig.MapLookuper(env), &out, &errOut)
	return code, out.String(), errOut.String()
}

// useLocalAWS points the AWS SDK at the process's shared local stack and
// returns it. The SDK reads the process environment, not the command's
// lookuper, so this sets variables with t.Setenv: tests that call it cannot
// run in parallel.
func useLocalAWS(t *testing.T) *localaws.Stack {
	t.Helper()
	s, err := localaws.Shared(t.Context())
	if err != nil {
		t.Fatalf("start local AWS: %v", err)
	}
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            s.Endpoint,
		"AWS_REGION":                  s.Region,
		"AWS_ACCESS_KEY_ID":           localaws.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       localaws.SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	return s
}

// migrated returns the URL of a fresh database with pgtrail's schema.
func migrated(t *testing.T) string {
	t.Helper()
	db := pgtest.New(t)
	if code, _, stderr := runCommand(t, t.Context(), map[string]string{"DATABASE_URL": db}, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, stderr)
	}
	return db
}

// wantLines fails unless out holds every line fragment, in order.
func wantLines(t *testing.T, out string, fragments ...string) {
	t.Helper()
	rest := out
	for _, f := range fragments {
		i := strings.Index(rest, f)
		if i < 0 {
			t.Errorf("output lacks %q (or has it out of order):\n%s", f, out)
			return
		}
		rest = rest[i+len(f):]
	}
}

func TestStatusWithoutQueue(t *testing.T) {
	t.Parallel()
	db := migrated(t)
	code, out, stderr := runCommand(t, t.Context(), map[string]string{"DATABASE_URL": db}, "status")
	if code != 0 {
		t.Fatalf("status: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	wantLines(t, out,
		"queue", "not checked: SQS_QUEUE_URL is not set",
		"database", "pgtrail_test_",
		"schema", "version ",
		"last hour", "no object processed",
		"last day", "no object processed",
		"last object", "none yet",
		"rejects", "none",
		"partitions", "none yet",
		"retention",
	)
	if strings.Contains(out, "COULD NOT") || strings.Contains(out, "incomplete") {
		t.Errorf("status reports a failure:\n%s", out)
	}
}

func TestStatusNotMigrated(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	code, out, _ := runCommand(t, t.Context(), map[string]string{"DATABASE_URL": db}, "status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	wantLines(t, out, "schema", "not migrated")
}

func TestStatusDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	const password = "s3cr3t-pw-do-not-print"
	env := map[string]string{"DATABASE_URL": "postgres://pgtrail:" + password + "@127.0.0.1:1/pgtrail?sslmode=disable&connect_timeout=2"}
	code, out, stderr := runCommand(t, t.Context(), env, "status", "-timeout", "2s")
	if code != 1 {
		t.Errorf("status: exit %d, want 1", code)
	}
	wantLines(t, out, "not checked: SQS_QUEUE_URL is not set", "database", "COULD NOT READ", "incomplete: could not reach the database")
	if strings.Contains(out+stderr, password) {
		t.Errorf("the password is in the output:\n%s\n%s", out, stderr)
	}
}

func TestStatusUsage(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/x"}
	if code, _, _ := runCommand(t, t.Context(), env, "status", "extra"); code != 2 {
		t.Errorf("status extra: exit %d, want 2", code)
	}
	if code, _, _ := runCommand(t, t.Context(), env, "status", "-nope"); code != 2 {
		t.Errorf("status -nope: exit %d, want 2", code)
	}
	env["PGTRAIL_HTTP_ADDR"] = ""
	if code, _, stderr := runCommand(t, t.Context(), env, "status", "-healthz"); code != 2 || !strings.Contains(stderr, "PGTRAIL_HTTP_ADDR is empty") {
		t.Errorf("status -healthz without an address: exit %d, stderr %q; want 2", code, stderr)
	}
	env["PGTRAIL_HTTP_ADDR"] = freeAddr(t)
	if code, _, _ := runCommand(t, t.Context(), env, "status", "-healthz", "-timeout", "2s"); code != 1 {
		t.Errorf("status -healthz with nothing listening: exit %d, want 1", code)
	}
}

// TestStatusQueues reads a queue and, through its redrive policy, its
// dead-letter queue. The local stack serves no CloudWatch, so the oldest
// message's age is unknown, which is not a failure.
func TestStatusQueues(t *testing.T) {
	stack := useLocalAWS(t)
	ctx := t.Context()
	db := migrated(t)
	queue, dlq, err := stack.CreateQueue(ctx, localaws.UniqueName("status"), 30, 3)
	if err != nil {
		t.Fatal(err)
	}
	send := func(url string, n int) {
		for range n {
			if _, err := stack.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("{}")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(queue, 2)
	send(dlq, 1)

	start := time.Now()
	code, out, stderr := runCommand(t, ctx, map[string]string{"DATABASE_URL": db, "SQS_QUEUE_URL": queue}, "status", "-timeout", "5s")
	if code != 0 {
		t.Fatalf("status: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("status took %s", d)
	}
	wantLines(t, out,
		"queue", queue,
		"messages", "2 waiting, 0 in flight, 0 delayed",
		"oldest", "unknown (",
		"settings", "visibility timeout 30s (pgtrail sets 1m)",
		"dead letters", dlq,
		"messages", "1 waiting, 0 in flight (moved there after 3 receives)",
		"database",
	)
}

// TestStatusQueueUnreachable names the queue it could not read and still
// shows the database.
func TestStatusQueueUnreachable(t *testing.T) {
	stack := useLocalAWS(t)
	db := migrated(t)
	missing := stack.Endpoint + "/000000000000/" + localaws.UniqueName("missing")
	code, out, _ := runCommand(t, t.Context(), map[string]string{"DATABASE_URL": db, "SQS_QUEUE_URL": missing}, "status", "-timeout", "5s")
	if code != 1 {
		t.Errorf("status: exit %d, want 1", code)
	}
	wantLines(t, out, "queue", missing, "COULD NOT READ", "schema", "version", "incomplete: could not reach the queue")
}

func TestPartitionDay(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"cloudtrail_events_20240802": "2024-08-02",
		"cloudtrail_events_default":  "cloudtrail_events_default",
		"":                           "",
	} {
		if got := partitionDay(in); got != want {
			t.Errorf("partitionDay(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBytesIEC(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB", 5 << 50: "5120.0 TiB"} {
		if got := bytesIEC(in); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParseQueueARN(t *testing.T) {
	t.Parallel()
	name, account, err := parseQueueARN("arn:aws:sqs:eu-west-1:111122223333:pgtrail-dlq")
	if err != nil || name != "pgtrail-dlq" || account != "111122223333" {
		t.Errorf("got %q, %q, %v", name, account, err)
	}
	for _, bad := range []string{"", "pgtrail-dlq", "arn:aws:sns:eu-west-1:111122223333:topic", "arn:aws:sqs:eu-west-1:111122223333:"} {
		if _, _, err := parseQueueARN(bad); err == nil {
			t.Errorf("parseQueueARN(%q) succeeded", bad)
		}
	}
}

func TestShort(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Duration]string{
		0: "0s", 30 * time.Second: "30s", time.Minute: "1m", 90 * time.Second: "90s",
		time.Hour: "1h", 96 * time.Hour: "4d", 1500 * time.Millisecond: "1.5s",
	} {
		if got := short(in); got != want {
			t.Errorf("short(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestStatusRetention(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	st := &status{Now: now}
	if got := st.retention(0); !strings.Contains(got, "every partition is kept") {
		t.Errorf("retention(0) = %q", got)
	}
	st.DB.Partitions.Oldest = "cloudtrail_events_20260301"
	if got := st.retention(9); strings.Contains(got, "OVERDUE") || !strings.Contains(got, "partitions before 2026-03-01 go") {
		t.Errorf("retention(9) with the oldest partition at the cutoff = %q", got)
	}
	if got := st.retention(7); !strings.Contains(got, "OVERDUE: 2026-03-01 is still there") {
		t.Errorf("retention(7) with a partition two days past the cutoff = %q", got)
	}
}

// TestStatusWarnsOfSmallLockTable: status names max_locks_per_transaction
// and the value to set when the lock table is small for the partitions,
// and says nothing of it otherwise.
func TestStatusWarnsOfSmallLockTable(t *testing.T) {
	t.Parallel()
	st := &status{Now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	st.DB.Schema, st.DB.Binary = 12, 12
	st.DB.Partitions = sink.PartitionSummary{Count: 365, Oldest: "cloudtrail_events_20250310", Newest: "cloudtrail_events_20260309"}
	st.DB.Locks = sink.LockBudget{MaxLocksPerTransaction: 64, MaxConnections: 100, Partitions: 365, Indexes: 12}
	var out strings.Builder
	st.print(&out, &Config{})
	wantLines(t, out.String(), "partitions", "365 daily", "locks", "WARNING", "set max_locks_per_transaction = 512")

	st.DB.Locks.MaxLocksPerTransaction = 512
	out.Reset()
	st.print(&out, &Config{})
	if strings.Contains(out.String(), "max_locks_per_transaction") {
		t.Errorf("status warns with max_locks_per_transaction = 512:\n%s", out.String())
	}
}
