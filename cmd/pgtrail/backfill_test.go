package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// The backfill tests run the built binary, as an operator does: a process
// that can be killed.

const (
	bfAccount = "123456789012"
	bfDays    = 4
	bfPerDay  = 40 // objects per day and region
	bfEvents  = 60 // events per object
)

var bfRegions = []string{"us-east-1", "eu-west-1"}

// bfWorld is a bucket with bfDays days of bfAccount's trail in bfRegions,
// plus a day after them that a backfill of the four must not read.
type bfWorld struct {
	stack   *localaws.Stack
	bucket  string
	objects int // in range
	events  int // in range
	bin     string
}

// bfTemp holds the built binary; TestMain makes and removes it.
var bfTemp string

func TestMain(m *testing.M) {
	var err error
	if bfTemp, err = os.MkdirTemp("", "pgtrail-test"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(bfTemp)
	os.Exit(code)
}

var bfShared struct {
	once sync.Once
	w    *bfWorld
}

// newBFWorld returns the world the backfill tests share, built once.
func newBFWorld(t *testing.T) *bfWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bfShared.once.Do(func() { bfShared.w = makeBFWorld(t) })
	if bfShared.w == nil {
		t.Fatal("the backfill world could not be built")
	}
	return bfShared.w
}

func makeBFWorld(t *testing.T) *bfWorld {
	ctx := context.Background()
	s, err := localaws.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The binary lives for the whole test binary's run; TestMain removes it.
	bin := filepath.Join(bfTemp, "pgtrail")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w := &bfWorld{stack: s, bucket: localaws.UniqueName("bf"), bin: bin}
	if err := s.CreateBucket(ctx, w.bucket); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	var g errgroup.Group
	g.SetLimit(16)
	for d := range bfDays + 1 {
		day := start.AddDate(0, 0, d)
		for ri, region := range bfRegions {
			for i := range bfPerDay {
				at := day.Add(time.Duration(i) * 30 * time.Minute)
				key := fmt.Sprintf("AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%03d.json.gz",
					bfAccount, region, day.Format("2006/01/02"), bfAccount, region, at.Format("20060102T1504Z"), i)
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				zw.Write([]byte(`{"Records":[`))
				for e := range bfEvents {
					if e > 0 {
						zw.Write([]byte(","))
					}
					fmt.Fprintf(zw, `{"eventVersion":"1.09","eventID":"%02d%d%03d%03d-0000-0000-0000-000000000000","eventTime":%q,"eventSource":"iam.amazonaws.com","eventName":"ListRoles","awsRegion":%q,"recipientAccountId":%q}`,
						d, ri, i, e, at.Add(time.Duration(e)*time.Second).Format(time.RFC3339), region, bfAccount)
				}
				zw.Write([]byte(`]}`))
				zw.Close()
				if d < bfDays {
					w.objects++
					w.events += bfEvents
				}
				g.Go(func() error {
					_, err := s.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key), Body: bytes.NewReader(b.Bytes())})
					return err
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return w
}

// env is the binary's environment against the local AWS and db.
func (w *bfWorld) env(db, queueURL string) []string {
	return append(os.Environ(),
		"AWS_ENDPOINT_URL="+w.stack.Endpoint, "AWS_REGION="+w.stack.Region,
		"AWS_ACCESS_KEY_ID="+localaws.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+localaws.SecretAccessKey,
		"S3_FORCE_PATH_STYLE=true", "DATABASE_URL="+db, "SQS_QUEUE_URL="+queueURL,
		"PGTRAIL_HTTP_ADDR=", "PGTRAIL_WAIT_TIME=1s", "PGTRAIL_LOG_LEVEL=warn",
		"PGTRAIL_OBJECT_CONCURRENCY=2")
}

func (w *bfWorld) backfill(db, queueURL string, extra ...string) *exec.Cmd {
	args := append([]string{"backfill", "-bucket", w.bucket, "-from", "2025-11-01", "-to", "2025-11-04"}, extra...)
	cmd := exec.Command(w.bin, args...)
	cmd.Env = w.env(db, queueURL)
	return cmd
}

// counts are what a database holds: events, distinct events, ledger rows.
type counts struct{ events, distinct, objects int }

func dbCounts(t *testing.T, db string) counts {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var c counts
	if err := pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM cloudtrail_events), (SELECT count(DISTINCT event_id) FROM cloudtrail_events),
		        (SELECT count(*) FROM cloudtrail_objects)`).Scan(&c.events, &c.distinct, &c.objects); err != nil {
		return counts{}
	}
	return c
}

// TestBackfillSurvivesSIGKILL kills a backfill three times as it loads, then
// runs it to the end: the database holds what a clean run stores, no event
// twice, and each later run reads only what was not committed.
func TestBackfillSurvivesSIGKILL(t *testing.T) {
	w := newBFWorld(t)
	t.Parallel()
	db := pgtest.New(t)
	want := counts{events: w.events, distinct: w.events, objects: w.objects}

	committed := 0
	for round, at := range []int{w.objects / 8, w.objects / 3, w.objects * 2 / 3} {
		cmd := w.backfill(db, "")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(30 * time.Second)
	poll:
		for time.Now().Before(deadline) {
			select {
			case err := <-exited:
				t.Fatalf("round %d: backfill ended before it was killed (%v):\n%s", round, err, out.String())
			case <-time.After(10 * time.Millisecond):
			}
			if dbCounts(t, db).objects >= at {
				break poll
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		c := dbCounts(t, db)
		if c.objects < committed {
			t.Fatalf("round %d: the ledger went from %d to %d objects", round, committed, c.objects)
		}
		if c.events != c.distinct {
			t.Fatalf("round %d: %d events, %d distinct", round, c.events, c.distinct)
		}
		committed = c.objects
		t.Logf("killed with %d of %d objects committed", committed, w.objects)
	}

	out, err := w.backfill(db, "").CombinedOutput()
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	// The last run reads only what the killed ones did not commit.
	wantLine := fmt.Sprintf("objects: %d in range", w.objects)
	stored := fmt.Sprintf("%d already stored, %d loaded, 0 failed", committed, w.objects-committed)
	if !strings.Contains(string(out), wantLine) || !strings.Contains(string(out), stored) {
		t.Errorf("final run's summary lacks %q and %q:\n%s", wantLine, stored, out)
	}
	if got := dbCounts(t, db); got != want {
		t.Errorf("after the kills and a final run: %+v; a clean run stores %+v", got, want)
	}

	// A second full run reads nothing.
	out, err = w.backfill(db, "").CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d already stored, 0 loaded", w.objects)) {
		t.Errorf("re-run: %v\n%s", err, out)
	}
}

// TestBackfillEnqueueTwoWorkers enqueues the range, and two workers drain
// the queue: every event of the range once, nothing else.
func TestBackfillEnqueueTwoWorkers(t *testing.T) {
	w := newBFWorld(t)
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	queueURL, _, err := w.stack.CreateQueue(ctx, localaws.UniqueName("bfq"), 30, 3)
	if err != nil {
		t.Fatal(err)
	}
	out, err := w.backfill(db, queueURL, "-enqueue").CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("0 already stored, %d enqueued, 0 failed", w.objects)) {
		t.Fatalf("backfill -enqueue: %v\n%s", err, out)
	}
	if visible, _, err := w.stack.QueueDepth(ctx, queueURL); err != nil || visible != w.objects {
		t.Fatalf("queue depth %d (%v), want %d", visible, err, w.objects)
	}
	var g errgroup.Group
	for range 2 {
		g.Go(func() error {
			cmd := exec.Command(w.bin, "run", "-drain")
			cmd.Env = w.env(db, queueURL)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("run -drain: %v\n%s", err, out)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// -drain stops at an empty receive: a message whose handling failed
	// (a timeout on a loaded machine) waits, hidden, for its visibility
	// timeout, and is left for the next run, never lost. Such messages are
	// drained once they are visible again.
	for round := 0; round < 3; round++ {
		visible, inFlight, err := w.stack.QueueDepth(ctx, queueURL)
		if err != nil {
			t.Fatal(err)
		}
		if visible+inFlight == 0 {
			break
		}
		t.Logf("after the drains, %d messages visible and %d in flight: draining again", visible, inFlight)
		for deadline := time.Now().Add(45 * time.Second); visible == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Second)
			if visible, _, err = w.stack.QueueDepth(ctx, queueURL); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(w.bin, "run", "-drain")
		cmd.Env = w.env(db, queueURL)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run -drain: %v\n%s", err, out)
		}
	}
	want := counts{events: w.events, distinct: w.events, objects: w.objects}
	if got := dbCounts(t, db); got != want {
		t.Errorf("after two workers drained the queue: %+v, want %+v", got, want)
	}
	if visible, inFlight, err := w.stack.QueueDepth(ctx, queueURL); err != nil || visible+inFlight != 0 {
		t.Errorf("queue left with %d visible and %d in flight (%v), want empty", visible, inFlight, err)
	}
}
