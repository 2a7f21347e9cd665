package backfill_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/backfill"
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// The test bucket holds 16 days (2026-03-01 to 03-16) of two trails:
//   - no prefix: accounts 111111111111 (us-east-1, eu-west-1, and Insight
//     files in us-east-1) and 222222222222 (us-east-1, eu-west-1);
//   - prefix corp/trail/, an organization trail o-abc123def4 over
//     333333333333 and 444444444444 (us-east-1, ap-south-1);
//
// with a digest file per stream and day beside the log files: 1,057 keys.
const (
	perDay     = 7 // log files per stream and day
	perInsight = 2 // Insight files per day
	perFile    = 2 // events per file
)

var (
	firstDay = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	allDays  = 16
)

type stream struct{ root, org, account, kind, region string }

var streams = []stream{
	{"", "", "111111111111", "CloudTrail", "us-east-1"},
	{"", "", "111111111111", "CloudTrail", "eu-west-1"},
	{"", "", "111111111111", "CloudTrail-Insight", "us-east-1"},
	{"", "", "222222222222", "CloudTrail", "us-east-1"},
	{"", "", "222222222222", "CloudTrail", "eu-west-1"},
	{"corp/trail/", "o-abc123def4", "333333333333", "CloudTrail", "us-east-1"},
	{"corp/trail/", "o-abc123def4", "333333333333", "CloudTrail", "ap-south-1"},
	{"corp/trail/", "o-abc123def4", "444444444444", "CloudTrail", "us-east-1"},
	{"corp/trail/", "o-abc123def4", "444444444444", "CloudTrail", "ap-south-1"},
}

func (s stream) accountDir() string {
	p := s.root + "AWSLogs/"
	if s.org != "" {
		p += s.org + "/"
	}
	return p + s.account + "/"
}

// object is one log file of the test bucket.
type object struct {
	key    string
	stream stream
	day    time.Time
	ids    []string
}

// world is a bucket filled once for the package's tests.
type world struct {
	aws     *localaws.Stack
	bucket  string
	objects []object
	body    map[string][]byte
}

var (
	worldOnce sync.Once
	theWorld  *world
	worldErr  error
)

func record(id string, at time.Time, s stream) string {
	return fmt.Sprintf(`{"eventVersion":"1.09","eventID":%q,"eventTime":%q,"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":%q,"recipientAccountId":%q,"sourceIPAddress":"203.0.113.9","userIdentity":{"type":"IAMUser","accountId":%q,"arn":"arn:aws:iam::%s:user/a"}}`,
		id, at.Format(time.RFC3339), s.region, s.account, s.account, s.account)
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func sharedWorld(t *testing.T) *world {
	t.Helper()
	worldOnce.Do(func() { theWorld, worldErr = buildWorld() })
	if worldErr != nil {
		t.Fatal(worldErr)
	}
	return theWorld
}

func buildWorld() (*world, error) {
	ctx := context.Background()
	s, err := localaws.Shared(ctx)
	if err != nil {
		return nil, err
	}
	w := &world{aws: s, bucket: localaws.UniqueName("history"), body: map[string][]byte{}}
	if err := s.CreateBucket(ctx, w.bucket); err != nil {
		return nil, err
	}
	var digests []string
	for d := range allDays {
		day := firstDay.AddDate(0, 0, d)
		for si, st := range streams {
			n := perDay
			if st.kind == "CloudTrail-Insight" {
				n = perInsight
			}
			dir := st.accountDir() + st.kind + "/" + st.region + "/" + day.Format("2006/01/02") + "/"
			for i := range n {
				at := day.Add(time.Duration(i)*time.Hour + 5*time.Minute)
				name := fmt.Sprintf("%s_%s_%s_%s_%02d.json.gz", st.account, st.kind, st.region, at.Format("20060102T1504Z"), i)
				o := object{key: dir + name, stream: st, day: day}
				var recs []string
				for r := range perFile {
					id := fmt.Sprintf("%02d-%d-%02d-%d-0000-000000000000", d, si, i, r)
					o.ids = append(o.ids, id)
					recs = append(recs, record(id, at.Add(time.Duration(r)*time.Second), st))
				}
				w.objects = append(w.objects, o)
				w.body[o.key] = gz(`{"Records":[` + strings.Join(recs, ",") + `]}`)
			}
			if st.kind == "CloudTrail" {
				dk := st.accountDir() + "CloudTrail-Digest/" + st.region + "/" + day.Format("2006/01/02") + "/" +
					st.account + "_CloudTrail-Digest_" + st.region + "_trail_" + st.region + "_" + day.Format("20060102T0000Z") + ".json.gz"
				digests = append(digests, dk)
				w.body[dk] = gz(`{"awsAccountId":"` + st.account + `"}`)
			}
		}
	}
	// Besides, something outside AWSLogs/ that a listing must not reach.
	w.body["unrelated/AWSLogs/999999999999/CloudTrail/us-east-1/2026/03/02/x.json.gz"] = gz(`{"Records":[]}`)
	var g errgroup.Group
	g.SetLimit(16)
	for k, b := range w.body {
		g.Go(func() error {
			_, err := s.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(k), Body: bytes.NewReader(b)})
			return err
		})
	}
	return w, g.Wait()
}

// counter counts S3 requests by kind.
type counter struct {
	next       http.Client
	lists, get atomic.Int64
}

func (c *counter) Do(r *http.Request) (*http.Response, error) {
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Has("list-type"):
		c.lists.Add(1)
	case r.Method == http.MethodGet:
		c.get.Add(1)
	}
	return c.next.Do(r)
}

func (w *world) client(c *counter) *s3.Client {
	return s3.NewFromConfig(w.aws.AWSConfig(), func(o *s3.Options) {
		o.UsePathStyle = true
		o.HTTPClient = c
	}, backfill.S3Options(0))
}

// want are the test bucket's log files of the trail at root in [from, to],
// optionally of some accounts only.
func (w *world) want(root string, from, to time.Time, accounts ...string) []object {
	var out []object
	for _, o := range w.objects {
		if o.stream.root == root && !o.day.Before(from) && !o.day.After(to) &&
			(len(accounts) == 0 || slices.Contains(accounts, o.stream.account)) {
			out = append(out, o)
		}
	}
	return out
}

func day(n int) time.Time { return firstDay.AddDate(0, 0, n) }

// noLedger is an empty ledger.
type noLedger struct{}

func (noLedger) Processed(context.Context, string, string) (bool, error) { return false, nil }

// TestDryRunListsOnlyTheRange counts the objects of a range, per account
// and region, with listing calls that grow with the days in range.
func TestDryRunListsOnlyTheRange(t *testing.T) {
	t.Parallel()
	w := sharedWorld(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		root     string
		from, to int
		accounts []string
		regions  []string
		// discovery: the delimiter listings before any day is listed.
		discovery int
		streams   int
	}{
		// AWSLogs/, 2 accounts' folders, CloudTrail/ of each, Insight of 111.
		{"plain 1 day", "", 4, 4, nil, nil, 1 + 2 + 3, 5},
		{"plain 3 days", "", 4, 6, nil, nil, 1 + 2 + 3, 5},
		{"plain 9 days", "", 2, 10, nil, nil, 1 + 2 + 3, 5},
		// AWSLogs/, o-…/, 2 accounts' folders, CloudTrail/ of each.
		{"org 3 days", "corp/trail", 0, 2, nil, nil, 1 + 1 + 2 + 2, 4},
		{"org one account one region", "corp/trail/", 5, 7, []string{"444444444444"}, []string{"ap-south-1"}, 1 + 1 + 1 + 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counter{}
			sum, err := backfill.Run(ctx, backfill.Config{Bucket: w.bucket, Prefix: tc.root, From: day(tc.from), To: day(tc.to),
				Accounts: tc.accounts, Regions: tc.regions, DryRun: true},
				backfill.Deps{S3: w.client(c), Ledger: noLedger{}})
			if err != nil {
				t.Fatal(err)
			}
			root := strings.TrimSuffix(tc.root, "/")
			if root != "" {
				root += "/"
			}
			var want []object
			for _, o := range w.want(root, day(tc.from), day(tc.to), tc.accounts...) {
				if len(tc.regions) == 0 || slices.Contains(tc.regions, o.stream.region) {
					want = append(want, o)
				}
			}
			var bytes int64
			perRegion := map[string]int64{}
			for _, o := range want {
				bytes += int64(len(w.body[o.key]))
				perRegion[o.stream.account+"/"+o.stream.region]++
			}
			if sum.Listed != int64(len(want)) || sum.ListedBytes != bytes {
				t.Errorf("listed %d objects, %d bytes; want %d, %d", sum.Listed, sum.ListedBytes, len(want), bytes)
			}
			got := map[string]int64{}
			for _, c := range sum.PerRegion {
				got[c.Account+"/"+c.Region] = c.Objects
			}
			if fmt.Sprint(got) != fmt.Sprint(perRegion) {
				t.Errorf("per region %v, want %v", got, perRegion)
			}
			days := tc.to - tc.from + 1
			wantCalls := int64(tc.discovery + tc.streams*days)
			if sum.ListCalls != wantCalls || c.lists.Load() != wantCalls {
				t.Errorf("%d list calls (%d seen by S3), want %d: %d to discover, %d streams × %d days",
					sum.ListCalls, c.lists.Load(), wantCalls, tc.discovery, tc.streams, days)
			}
			if c.get.Load() != 0 {
				t.Errorf("a dry run made %d GetObject calls", c.get.Load())
			}
			t.Logf("%d days: %d objects in %d list calls", days, sum.Listed, sum.ListCalls)
		})
	}
}

// env is a migrated database and a processor reading the test bucket.
type env struct {
	w    *world
	pg   *sink.Postgres
	proc *worker.Processor
	c    *counter
	s3   *s3.Client
}

func newEnv(t *testing.T) *env { return newEnvOf(t, sharedWorld(t)) }

func newEnvOf(t *testing.T, w *world) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{w: w, c: &counter{}}
	var err error
	e.pg, err = sink.Open(ctx, sink.Config{URL: pgtest.New(t), MaxConns: 8}, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pg.Close)
	if _, err := e.pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e.s3 = e.w.client(e.c)
	e.proc = worker.NewProcessor(worker.Config{ObjectConcurrency: 8}, e.s3, e.pg, e.pg, nil, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	return e
}

// eventIDs are the stored events' ids, sorted.
func eventIDs(t *testing.T, pg *sink.Postgres) []string {
	t.Helper()
	rows, err := pg.Pool().Query(context.Background(), "SELECT event_id FROM cloudtrail_events ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestLoadExactlyTheRange loads three days of the organization trail and
// checks the events are those of the range's files, every one once; a
// second run finds them all in the ledger and reads no object.
func TestLoadExactlyTheRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	cfg := backfill.Config{Bucket: e.w.bucket, Prefix: "corp/trail", From: day(3), To: day(5)}
	sum, err := backfill.Run(ctx, cfg, backfill.Deps{S3: e.s3, Ledger: e.pg, Processor: e.proc})
	if err != nil {
		t.Fatal(err)
	}
	want := e.w.want("corp/trail/", day(3), day(5))
	var wantIDs []string
	for _, o := range want {
		wantIDs = append(wantIDs, o.ids...)
	}
	slices.Sort(wantIDs)
	if sum.Done != int64(len(want)) || sum.Failed != 0 || sum.Inserted != int64(len(wantIDs)) || sum.Duplicates != 0 {
		t.Fatalf("first run: %+v; want %d objects, %d events inserted", sum.Stats, len(want), len(wantIDs))
	}
	if got := e.c.get.Load(); got != int64(len(want)) {
		t.Errorf("first run: %d GetObject, want %d", got, len(want))
	}
	t.Logf("loaded %d objects, %d events in %s: %.0f objects/s, %.0f events/s", sum.Done, sum.Events,
		sum.Elapsed.Round(time.Millisecond), float64(sum.Done)/sum.Elapsed.Seconds(), float64(sum.Events)/sum.Elapsed.Seconds())
	gotIDs := eventIDs(t, e.pg)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("stored %d events, want the %d of the range's files", len(gotIDs), len(wantIDs))
	}

	e.c.get.Store(0)
	again, err := backfill.Run(ctx, cfg, backfill.Deps{S3: e.s3, Ledger: e.pg, Processor: e.proc})
	if err != nil {
		t.Fatal(err)
	}
	if again.Stored != int64(len(want)) || again.Done != 0 || e.c.get.Load() != 0 {
		t.Errorf("second run: %d stored, %d done, %d GetObject; want %d, 0, 0", again.Stored, again.Done, e.c.get.Load(), len(want))
	}
	if n := len(eventIDs(t, e.pg)); n != len(wantIDs) {
		t.Errorf("after the second run, %d events, want %d", n, len(wantIDs))
	}
}

// TestEnqueueSendsCloudTrailNotifications enqueues a range and reads the
// queue back: one notification per log file not yet stored, in the format
// the worker parses.
func TestEnqueueSendsCloudTrailNotifications(t *testing.T) {
	t.Parallel()
	w := sharedWorld(t)
	ctx := context.Background()
	queueURL, _, err := w.aws.CreateQueue(ctx, localaws.UniqueName("bf"), 30, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := w.want("", day(0), day(1), "111111111111")
	// The first one is stored already.
	stored := map[string]bool{want[0].key: true}
	sum, err := backfill.Run(ctx, backfill.Config{Bucket: w.bucket, From: day(0), To: day(1), Accounts: []string{"111111111111"}, QueueURL: queueURL},
		backfill.Deps{S3: w.client(&counter{}), Ledger: mapLedger(stored), Queue: w.aws.SQS()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != int64(len(want)-1) || sum.Stored != 1 {
		t.Errorf("enqueued %d, stored %d; want %d, 1", sum.Done, sum.Stored, len(want)-1)
	}
	got := map[string]int{}
	for {
		out, err := w.aws.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			n, err := worker.ParseNotification([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("%s: %v", aws.ToString(m.Body), err)
			}
			for _, r := range n.Objects {
				if r.Bucket != w.bucket {
					t.Errorf("bucket %q", r.Bucket)
				}
				got[r.Key]++
			}
		}
	}
	if len(got) != len(want)-1 {
		t.Errorf("%d keys on the queue, want %d", len(got), len(want)-1)
	}
	for _, o := range want[1:] {
		if got[o.key] != 1 {
			t.Errorf("%s enqueued %d times", o.key, got[o.key])
		}
	}
}

// newBucket is an env over a new bucket of its own holding files.
func newBucket(t *testing.T, name string, files map[string][]byte) (*env, string) {
	t.Helper()
	ctx := context.Background()
	s, err := localaws.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOf(t, &world{aws: s})
	bucket := localaws.UniqueName(name)
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	for k, b := range files {
		if _, err := e.w.aws.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return e, bucket
}

type mapLedger map[string]bool

func (m mapLedger) Processed(_ context.Context, _, key string) (bool, error) { return m[key], nil }

// TestFailedObjectsAreNamed: an object that cannot be decoded fails alone,
// named in the summary; the others are loaded.
func TestFailedObjectsAreNamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := "AWSLogs/555555555555/CloudTrail/us-east-1/2026/03/02/"
	st := stream{account: "555555555555", kind: "CloudTrail", region: "us-east-1"}
	files := map[string][]byte{
		dir + "good.json.gz":   gz(`{"Records":[` + record("ffffffff-0000-0000-0000-000000000001", day(1).Add(time.Hour), st) + `]}`),
		dir + "broken.json.gz": []byte("\x1f\x8b\x08 not gzip at all"),
	}
	e, bucket := newBucket(t, "broken", files)
	sum, err := backfill.Run(ctx, backfill.Config{Bucket: bucket, From: day(1), To: day(1)},
		backfill.Deps{S3: e.s3, Ledger: e.pg, Processor: e.proc})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != 1 || sum.Failed != 1 || len(sum.Failures) != 1 || !strings.Contains(sum.Failures[0], "s3://"+bucket+"/"+dir+"broken.json.gz") {
		t.Errorf("done %d, failed %d, failures %q", sum.Done, sum.Failed, sum.Failures)
	}
}

// TestLoadsInsightFiles: Insights files are events, found and loaded like
// log files; in an account that has only Insights files as well, and
// beside their digests, which are not read.
func TestLoadsInsightFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// 666… has log and Insights files; 777… only Insights files, in two
	// regions. Each day's files, and a digest, on days 1 to 3.
	type file struct {
		kind    cloudtrail.KeyKind
		account string
		region  string
	}
	var wantIDs []string
	files := map[string][]byte{}
	for d := 1; d <= 3; d++ {
		for i, f := range []file{
			{cloudtrail.KeyLog, "666666666666", "us-east-1"},
			{cloudtrail.KeyInsight, "666666666666", "us-east-1"},
			{cloudtrail.KeyInsight, "777777777777", "us-east-1"},
			{cloudtrail.KeyInsight, "777777777777", "eu-central-1"},
			{cloudtrail.KeyDigest, "777777777777", "us-east-1"},
		} {
			dir := cloudtrail.LogFolder{AccountID: f.account, Region: f.region, Kind: f.kind}.DayPrefix(day(d))
			id := fmt.Sprintf("eeeeeeee-0000-0000-%04d-%012d", d, i)
			body := gz(`{"Records":[` + record(id, day(d).Add(time.Hour), stream{account: f.account, region: f.region}) + `]}`)
			if f.kind == cloudtrail.KeyDigest {
				body = gz(`{"awsAccountId":"` + f.account + `"}`)
			} else if d <= 2 {
				wantIDs = append(wantIDs, id)
			}
			files[dir+f.account+"_"+f.kind.Folder()+"_"+f.region+"_x.json.gz"] = body
		}
	}
	e, bucket := newBucket(t, "insight", files)
	sum, err := backfill.Run(ctx, backfill.Config{Bucket: bucket, From: day(1), To: day(2)},
		backfill.Deps{S3: e.s3, Ledger: e.pg, Processor: e.proc})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(wantIDs)
	if got := eventIDs(t, e.pg); !slices.Equal(got, wantIDs) {
		t.Errorf("stored %q, want %q", got, wantIDs)
	}
	if sum.Done != int64(len(wantIDs)) || sum.Failed != 0 || e.c.get.Load() != int64(len(wantIDs)) {
		t.Errorf("%d objects loaded, %d failed, %d GetObject; want %d, 0, %d", sum.Done, sum.Failed, e.c.get.Load(), len(wantIDs), len(wantIDs))
	}
	// AWSLogs/, the two accounts' folders, CloudTrail/ of 666 and
	// CloudTrail-Insight/ of each: 1 + 2 + 3; then 4 streams × 2 days.
	if want := int64(1 + 2 + 3 + 4*2); sum.ListCalls != want {
		t.Errorf("%d list calls, want %d", sum.ListCalls, want)
	}
}
