package faultsuite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/internal/faults"
	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// world is one scenario's queue and dead-letter queue, bucket, database,
// fault proxy and pgtrail processes, and what they must end up with.
type world struct {
	t        *testing.T
	ctx      context.Context
	stack    *localaws.Stack
	proxy    *faults.Proxy
	queueURL string
	dlqURL   string
	bucket   string
	dbURL    string
	db       *pgxpool.Pool
	rng      *rand.Rand
	dir      string
	env      map[string]string
	noPoison bool

	mu      sync.Mutex
	objects []object
	poison  []string // bodies that belong in the dead-letter queue
	procs   []*proc
}

// worldOptions adjusts newWorld.
type worldOptions struct {
	// dbURL is the database; empty means a fresh one on the shared server.
	dbURL string
	// maxReceive is the queue's maxReceiveCount (default 6).
	maxReceive int
	// env overrides the workers' environment.
	env map[string]string
	// noPoison makes seed plant no poison message: the dead-letter queue
	// must then end empty.
	noPoison bool
}

// newWorld makes a scenario's resources; the seed makes its objects and its
// fault draws repeatable.
func newWorld(t *testing.T, seed uint64, opts worldOptions) *world {
	t.Helper()
	ctx := t.Context()
	stack, err := localaws.Shared(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{
		t: t, ctx: ctx, stack: stack, dbURL: opts.dbURL,
		bucket:   localaws.UniqueName("faults"),
		rng:      rand.New(rand.NewPCG(seed, seed+1)),
		dir:      t.TempDir(),
		noPoison: opts.noPoison,
	}
	if w.dbURL == "" {
		w.dbURL = pgtest.New(t)
	}
	if opts.maxReceive == 0 {
		opts.maxReceive = 6
	}
	if w.queueURL, w.dlqURL, err = stack.CreateQueue(ctx, localaws.UniqueName("faults"), 30, opts.maxReceive); err != nil {
		t.Fatal(err)
	}
	if err := stack.CreateBucket(ctx, w.bucket); err != nil {
		t.Fatal(err)
	}
	if w.proxy, err = faults.Start(stack.Endpoint, seed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.proxy.Close() })
	if w.db, err = pgxpool.New(context.Background(), w.dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.db.Close)

	home := filepath.Join(w.dir, "home")
	_ = os.Mkdir(home, 0o700)
	w.env = map[string]string{
		"PATH":                        os.Getenv("PATH"),
		"HOME":                        home,
		"DATABASE_URL":                w.dbURL,
		"SQS_QUEUE_URL":               w.queueURL,
		"AWS_ENDPOINT_URL":            w.proxy.URL,
		"AWS_REGION":                  localaws.Region,
		"AWS_ACCESS_KEY_ID":           localaws.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       localaws.SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(home, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "aws-credentials"),
		"S3_FORCE_PATH_STYLE":         "true",
		"PGTRAIL_HTTP_ADDR":           "",
		"PGTRAIL_VISIBILITY_TIMEOUT":  "6s",
		"PGTRAIL_SHUTDOWN_GRACE":      "5s",
		"PGTRAIL_POLLERS":             "2",
		"PGTRAIL_OBJECT_CONCURRENCY":  "4",
		"PGTRAIL_LOG_LEVEL":           "info",
	}
	for k, v := range opts.env {
		w.env[k] = v
	}
	t.Cleanup(w.cleanup)
	return w
}

// seed uploads n generated objects over days days (plus the real corpus
// when corpus is set), announces them in notifications of one to five keys
// as CloudTrail does, half of them in SNS envelopes, each sent copies times
// (at least once), and, unless the world was made with noPoison, plants two
// poison messages that belong in the dead-letter queue: one that is no
// notification and one naming an object that does not exist. It returns the
// number of notifications.
func (w *world) seed(n, days int, corpus bool, copies int) int {
	w.t.Helper()
	objs := generate(w.rng, "gen", n, days)
	if corpus {
		real, err := realCorpus()
		if err != nil {
			w.t.Fatal(err)
		}
		objs = append(objs, real...)
	}
	w.put(objs...)
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.key
	}
	w.rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	var bodies []string
	for len(keys) > 0 {
		k := min(1+w.rng.IntN(5), len(keys))
		bodies = append(bodies, cloudTrailBody(w.bucket, keys[:k], w.rng.IntN(2) == 0))
		keys = keys[k:]
	}
	notifications := len(bodies)
	for range copies - 1 {
		bodies = append(bodies, bodies[:notifications]...)
	}
	w.rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	if w.noPoison {
		w.send(bodies...)
		return notifications
	}
	poison := []string{
		`{"hello":"this is not a notification"}`,
		cloudTrailBody(w.bucket, []string{"gen/AWSLogs/111122223333/CloudTrail/us-east-1/missing.json.gz"}, false),
	}
	w.mu.Lock()
	w.poison = append(w.poison, poison...)
	w.mu.Unlock()
	w.send(append(bodies, poison...)...)
	return notifications
}

// put uploads objects and records them as expected.
func (w *world) put(objs ...object) {
	w.t.Helper()
	g, ctx := errgroup.WithContext(w.ctx)
	g.SetLimit(8)
	for _, o := range objs {
		g.Go(func() error {
			_, err := w.stack.S3().PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(w.bucket), Key: aws.String(o.key), Body: bytes.NewReader(o.body),
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.objects = append(w.objects, objs...)
	w.mu.Unlock()
}

// send puts message bodies on the queue, straight to the emulator.
func (w *world) send(bodies ...string) {
	w.t.Helper()
	for i := 0; i < len(bodies); i += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for j, b := range bodies[i:min(i+10, len(bodies))] {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(b)})
		}
		out, err := w.stack.SQS().SendMessageBatch(w.ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(w.queueURL), Entries: entries})
		if err != nil {
			w.t.Fatal(err)
		}
		if len(out.Failed) > 0 {
			w.t.Fatalf("send: %d failed", len(out.Failed))
		}
	}
}

// proc is one pgtrail process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // set when done is closed
}

// startWorker starts `pgtrail run` with the world's environment and
// overrides ("NAME=value").
func (w *world) startWorker(overrides ...string) *proc {
	w.t.Helper()
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	for _, kv := range overrides {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	w.mu.Lock()
	n := len(w.procs)
	w.mu.Unlock()
	p := &proc{name: fmt.Sprintf("worker-%d", n), log: filepath.Join(w.dir, fmt.Sprintf("worker-%d.log", n)), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		w.t.Fatal(err)
	}
	p.cmd = exec.Command(binary(w.t), "run")
	p.cmd.Env = list
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		w.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	w.mu.Lock()
	w.procs = append(w.procs, p)
	w.mu.Unlock()
	return p
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and returns the exit code, or -1 if the process did
// not exit within timeout (it is then killed).
func (p *proc) stop(timeout time.Duration) int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

func (w *world) cleanup() {
	w.mu.Lock()
	procs := slices.Clone(w.procs)
	w.mu.Unlock()
	for _, p := range procs {
		if p.running() {
			p.kill()
		}
	}
	if w.t.Failed() {
		for _, p := range procs {
			w.t.Logf("%s (%s) log tail:\n%s", p.name, p.log, tail(p.log, 40))
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// state is what the world looks like from outside.
type state struct {
	ledger, visible, inFlight, dlq int
}

func (s state) String() string {
	return fmt.Sprintf("%d objects committed, queue %d visible + %d in flight, DLQ %d", s.ledger, s.visible, s.inFlight, s.dlq)
}

func (w *world) state() state {
	var s state
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	// Before migrations, or with the database down, the count stays 0.
	_ = w.db.QueryRow(ctx, `SELECT count(*) FROM cloudtrail_objects`).Scan(&s.ledger)
	s.visible, s.inFlight, _ = w.stack.QueueDepth(ctx, w.queueURL)
	v, f, _ := w.stack.QueueDepth(ctx, w.dlqURL)
	s.dlq = v + f
	return s
}

// waitDone waits until every object is committed, the queue is empty and
// the poison messages are in the dead-letter queue.
func (w *world) waitDone(timeout time.Duration) bool {
	w.t.Helper()
	w.mu.Lock()
	want, poison := len(w.objects), len(w.poison)
	w.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		s := w.state()
		if s.ledger >= want && s.visible == 0 && s.inFlight == 0 && s.dlq >= poison {
			return true
		}
		if time.Now().After(deadline) {
			w.t.Errorf("after %s: %s; want %d objects, an empty queue and %d in the DLQ", timeout, s, want, poison)
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitCommitted waits until at least n objects are committed.
func (w *world) waitCommitted(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for w.state().ledger < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// canary announces one more object once the faults are over and waits for
// it: the workers must still be serving.
func (w *world) canary(timeout time.Duration) {
	w.t.Helper()
	objs := generate(w.rng, "canary", 1, 1)
	w.put(objs...)
	w.send(cloudTrailBody(w.bucket, []string{objs[0].key}, true))
	if !w.waitDone(timeout) {
		w.t.Errorf("canary %s not ingested: the workers stopped serving", objs[0].key)
	}
}

// result is one line of the figures table.
type result struct {
	fault                       string
	injections                  int64
	expected, found, dups, lost int
}

// verify compares the database and the queues with what the world must
// end up with, and returns the figures.
func (w *world) verify(fault string, injections int64) result {
	w.t.Helper()
	ctx := w.ctx
	w.mu.Lock()
	objs := slices.Clone(w.objects)
	poison := slices.Clone(w.poison)
	w.mu.Unlock()

	expected := map[eventKey]bool{}
	rejects := 0
	for _, o := range objs {
		for _, k := range o.events {
			expected[k] = true
		}
		rejects += o.rejects
	}
	res := result{fault: fault, injections: injections, expected: len(expected)}

	found := map[eventKey]int{}
	rows, err := w.db.Query(ctx, `SELECT event_id, event_time FROM cloudtrail_events`)
	if err != nil {
		w.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			w.t.Fatal(err)
		}
		found[keyOf(id, at)]++
		res.found++
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	// A duplicate is a row beyond what an event ID should have: the primary
	// key (event_id, event_time) rules out exact copies, so this counts an
	// event stored again under another instant too.
	wantPerID, gotPerID := map[string]int{}, map[string]int{}
	for k := range expected {
		wantPerID[k.id]++
	}
	extra := 0
	for k, n := range found {
		gotPerID[k.id] += n
		if !expected[k] {
			extra++
		}
	}
	for id, n := range gotPerID {
		res.dups += max(0, n-max(wantPerID[id], 1))
	}
	for k := range expected {
		if found[k] == 0 {
			res.lost++
		}
	}
	if res.lost > 0 || res.dups > 0 || extra > 0 {
		w.t.Errorf("%s: %d events expected, %d found: %d lost, %d duplicated, %d unexpected", fault, res.expected, res.found, res.lost, res.dups, extra)
	}

	var ledger, inserted, storedRejects, ledgerRejected int
	if err := w.db.QueryRow(ctx, `SELECT count(*), coalesce(sum(inserted), 0), coalesce(sum(rejected), 0),
		(SELECT count(*) FROM cloudtrail_rejects) FROM cloudtrail_objects`).Scan(&ledger, &inserted, &ledgerRejected, &storedRejects); err != nil {
		w.t.Fatal(err)
	}
	if ledger != len(objs) {
		w.t.Errorf("%d objects in the ledger, want %d", ledger, len(objs))
	}
	if inserted != res.found {
		w.t.Errorf("the ledger counts %d events inserted, the table holds %d", inserted, res.found)
	}
	if storedRejects != rejects || ledgerRejected != rejects {
		w.t.Errorf("%d rejects stored (ledger %d), want %d", storedRejects, ledgerRejected, rejects)
	}
	// The activity rows, written in the same transactions as the events,
	// count each event once whatever the faults did to those.
	var wrongHours int
	if err := w.db.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT hour, sum(events) AS events, sum(errors) AS errors FROM cloudtrail_activity GROUP BY hour
	) a FULL JOIN (
		SELECT date_bin('1 hour', event_time, timestamptz '1970-01-01 00:00:00+00') AS hour, count(*) AS events, count(error_code) AS errors
		FROM cloudtrail_events GROUP BY 1
	) e USING (hour)
	WHERE a.events IS DISTINCT FROM e.events OR a.errors IS DISTINCT FROM e.errors`).Scan(&wrongHours); err != nil {
		w.t.Fatal(err)
	}
	if wrongHours != 0 {
		w.t.Errorf("%s: cloudtrail_activity disagrees with the events in %d hours", fault, wrongHours)
	}

	s := w.state()
	if s.visible != 0 || s.inFlight != 0 {
		w.t.Errorf("queue not drained: %s", s)
	}
	dlq := w.drainDLQ()
	sort.Strings(dlq)
	sort.Strings(poison)
	if !slices.Equal(dlq, poison) {
		w.t.Errorf("dead-letter queue holds %d messages %q, want the %d poison messages %q", len(dlq), dlq, len(poison), poison)
	}
	w.checkLogs()
	return res
}

// drainDLQ receives every message of the dead-letter queue.
func (w *world) drainDLQ() []string {
	w.t.Helper()
	var bodies []string
	for {
		out, err := w.stack.SQS().ReceiveMessage(w.ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(w.dlqURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 300,
		})
		if err != nil {
			w.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
}

// checkLogs fails on a panic in any worker's output and logs a summary of
// the warnings and errors, by message.
func (w *world) checkLogs() {
	w.t.Helper()
	counts := map[string]int{}
	for _, p := range w.procs {
		f, err := os.Open(p.log)
		if err != nil {
			w.t.Error(err)
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if bytes.HasPrefix(line, []byte("panic:")) || bytes.HasPrefix(line, []byte("fatal error:")) {
				w.t.Errorf("%s: %s", p.name, line)
			}
			var entry struct{ Level, Msg string }
			if json.Unmarshal(line, &entry) == nil && (entry.Level == "warn" || entry.Level == "error") {
				counts[entry.Level+": "+entry.Msg]++
			}
		}
		f.Close()
	}
	var lines []string
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf("%6d  %s", n, k))
	}
	sort.Strings(lines)
	if len(lines) > 0 {
		w.t.Logf("worker warnings and errors:\n%s", strings.Join(lines, "\n"))
	}
}

// spread calls inject n times at random moments of the ingest: each time
// once a random share, from 5 % to 90 %, of the objects is committed (the
// shares in increasing order), after a random pause of up to half a
// second. It gives up waiting for a share after timeout and injects all the
// same.
func (w *world) spread(n int, timeout time.Duration, inject func(i int)) {
	w.mu.Lock()
	total := len(w.objects)
	w.mu.Unlock()
	shares := make([]float64, n)
	for i := range shares {
		shares[i] = 0.05 + 0.85*w.rng.Float64()
	}
	sort.Float64s(shares)
	for i, share := range shares {
		w.waitCommitted(int(share*float64(total)), timeout)
		w.sleepRandom(0, 500*time.Millisecond)
		inject(i)
	}
}

// sleepRandom sleeps for a random time in [lo, hi).
func (w *world) sleepRandom(lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(w.rng.Int64N(int64(hi-lo))))
}

// results collects the table rows of the scenarios that ran.
type results struct {
	mu   sync.Mutex
	rows []result
}

func (r *results) add(row result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
}

// table renders the figures as Markdown, in scenario order.
func (r *results) table(order []string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("| fault | injections | events expected | events found | duplicates | lost |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, name := range order {
		for _, row := range r.rows {
			if row.fault == name {
				fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", row.fault, row.injections, row.expected, row.found, row.dups, row.lost)
			}
		}
	}
	return b.String()
}
