package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/internal/localaws"
)

// awsStack is the local AWS and the bucket the data set is uploaded to
// (once, for every run).
type awsStack struct {
	*localaws.Stack
	bucket   string
	uploaded *gen.Set
}

func startAWS(ctx context.Context) (*awsStack, error) {
	s, err := localaws.Start(ctx, localaws.Options{})
	if err != nil {
		return nil, err
	}
	st := &awsStack{Stack: s, bucket: localaws.UniqueName("bench")}
	if err := s.CreateBucket(ctx, st.bucket); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *awsStack) upload(ctx context.Context, set *gen.Set) error {
	if st.uploaded == set {
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range set.Objects {
		o := &set.Objects[i]
		g.Go(func() error {
			_, err := st.S3().PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(st.bucket), Key: aws.String(o.Key), Body: bytes.NewReader(o.Body),
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	st.uploaded = set
	return nil
}

// notify queues one CloudTrail notification per key on a new queue and
// returns its URL.
func (st *awsStack) notify(ctx context.Context, keys []string) (string, error) {
	q, _, err := st.CreateQueue(ctx, localaws.UniqueName("bench"), 120, 0)
	if err != nil {
		return "", err
	}
	for i := 0; i < len(keys); i += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for k, key := range keys[i:min(i+10, len(keys))] {
			body, _ := json.Marshal(map[string]any{"s3Bucket": st.bucket, "s3ObjectKey": []string{key}})
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(k)), MessageBody: aws.String(string(body)),
			})
		}
		if _, err := st.SQS().SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q), Entries: entries}); err != nil {
			return "", fmt.Errorf("send: %w", err)
		}
	}
	return q, nil
}

// defaultMaxInFlight is pgtrail's PGTRAIL_MAX_IN_FLIGHT with its default
// two pollers.
const defaultMaxInFlight = 20

// child is a running pgtrail command.
type child struct {
	cmd    *exec.Cmd
	start  time.Time
	stderr *bytes.Buffer
	hwm    atomic.Int64 // peak RSS in kB, sampled from /proc
	stop   chan struct{}
}

// sample reads the child's VmHWM every 20 ms until stop is closed. The
// rusage of a child is no help: on Linux its ru_maxrss starts from the
// parent's RSS at fork.
func (c *child) sample() {
	path := fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					if kb > c.hwm.Load() {
						c.hwm.Store(kb)
					}
				}
			}
		}
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// passedEnv is what of the benchmark's own environment reaches pgtrail:
// the Go runtime's knobs and PGTRAIL_* variables, for experiments such as
// GOGC=200 or PGTRAIL_CPU_PROFILE=/tmp/run.pprof. The benchmark's own
// settings for a measurement still win.
func passedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PGTRAIL_") || strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return env
}

func startChild(o options, env []string, args ...string) (*child, error) {
	cmd := exec.Command(o.bin, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"PGTRAIL_MIGRATE=false", "PGTRAIL_LOG_LEVEL=warn", "PGTRAIL_HTTP_ADDR=127.0.0.1:0",
	}, passedEnv()...)
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	c := &child{cmd: cmd, stderr: &stderr, stop: make(chan struct{})}
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go c.sample()
	return c, nil
}

// finish fills m's CPU and memory from the exited child.
func (c *child) finish(m *Measurement) {
	ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return
	}
	cpu := tv(ru.Utime) + tv(ru.Stime)
	m.CPUSecPerM = cpu.Seconds() / float64(m.Events) * 1e6
	close(c.stop)
	m.PeakRSSMB = float64(c.hwm.Load()) / 1024
}

// runE2E measures pgtrail run at one object concurrency.
func runE2E(ctx context.Context, o options, st *awsStack, set *gen.Set, concurrency int) (Measurement, error) {
	if err := st.upload(ctx, set); err != nil {
		return Measurement{}, err
	}
	keys := make([]string, len(set.Objects))
	for i, ob := range set.Objects {
		keys[i] = ob.Key
	}
	m := Measurement{Name: fmt.Sprintf("run c=%d", concurrency), Concurrency: concurrency, Events: set.Records}
	err := runQueue(ctx, o, st, keys, concurrency, set.Unique, &m)
	if err != nil {
		return m, err
	}
	rate(&m, time.Duration(m.Seconds*float64(time.Second)), set.Compressed, set.Raw)
	m.Note = fmt.Sprintf("emulators %.1f CPU-s/M ev", m.EmulatorCPUSecPerM)
	return m, nil
}

// runQueue queues keys, runs pgtrail run until every object is in the
// ledger and the queue is empty, and checks that unique events were stored.
func runQueue(ctx context.Context, o options, st *awsStack, keys []string, concurrency, unique int, m *Measurement) error {
	dbURL, conn, done, err := freshDB(ctx, o.server)
	if err != nil {
		return err
	}
	defer done()
	q, err := st.notify(ctx, keys)
	if err != nil {
		return err
	}
	env := []string{
		"DATABASE_URL=" + dbURL, "SQS_QUEUE_URL=" + q,
		"AWS_ENDPOINT_URL=" + st.Endpoint, "AWS_REGION=" + st.Region,
		"AWS_ACCESS_KEY_ID=" + localaws.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + localaws.SecretAccessKey,
		"S3_FORCE_PATH_STYLE=true",
		"PGTRAIL_OBJECT_CONCURRENCY=" + strconv.Itoa(concurrency),
	}
	// pgtrail's own default applies unless -max-in-flight says otherwise
	// or would leave the messages in flight below the concurrency.
	if o.inFlight > 0 || concurrency > defaultMaxInFlight {
		env = append(env, "PGTRAIL_MAX_IN_FLIGHT="+strconv.Itoa(max(o.inFlight, concurrency)))
	}
	cpu0 := selfCPU()
	meter := startServerMeter()
	c, err := startChild(o, env, "run")
	if err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	deadline := time.Now().Add(time.Duration(unique/2000+120) * time.Second)
	var elapsed, committed time.Duration
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("pgtrail run exited early: %v\n%s", err, c.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		var done int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM cloudtrail_objects`).Scan(&done); err != nil {
			return err
		}
		if done >= len(keys) {
			if committed == 0 {
				committed = time.Since(c.start)
			}
			v, f, err := st.QueueDepth(ctx, q)
			if err != nil {
				return err
			}
			if v+f == 0 {
				elapsed = time.Since(c.start)
				break
			}
		}
		if time.Now().After(deadline) {
			_ = c.cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%w: %d of %d objects committed\n%s", errTimeout, done, len(keys), c.stderr)
		}
	}
	m.EmulatorCPUSecPerM = (selfCPU() - cpu0).Seconds() / float64(m.Events) * 1e6
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-exited
	m.DBCPUSecPerM = meter.perMillion(unique)
	if elapsed-committed > time.Second {
		// Every object was committed, but messages stayed on the queue:
		// a delete that did not happen shows here.
		fmt.Fprintf(os.Stderr, "%s: every object committed after %.1fs, the queue empty only after %.1fs\n", m.Name, committed.Seconds(), elapsed.Seconds())
	}
	if c.stderr.Len() > 0 {
		fmt.Fprintf(os.Stderr, "%s: pgtrail logged:\n%s\n", m.Name, tail(c.stderr.String(), 20))
	}
	c.finish(m)
	m.Seconds = elapsed.Seconds()
	return checkStored(ctx, conn, unique)
}

func checkStored(ctx context.Context, conn *pgx.Conn, unique int) error {
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM cloudtrail_events`).Scan(&n); err != nil {
		return err
	}
	if n != unique {
		return fmt.Errorf("%d events stored, want %d", n, unique)
	}
	return nil
}

// runIngest measures pgtrail ingest on the data set written to files.
func runIngest(ctx context.Context, o options, set *gen.Set) (Measurement, error) {
	dir, err := os.MkdirTemp("", "pgtrail-bench-")
	if err != nil {
		return Measurement{}, err
	}
	defer os.RemoveAll(dir)
	for _, ob := range set.Objects {
		p := filepath.Join(dir, filepath.FromSlash(ob.Key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return Measurement{}, err
		}
		if err := os.WriteFile(p, ob.Body, 0o644); err != nil {
			return Measurement{}, err
		}
	}
	m := Measurement{Name: "ingest", Events: set.Records}
	if err := ingestDir(ctx, o, dir, set.Unique, &m); err != nil {
		return m, err
	}
	rate(&m, time.Duration(m.Seconds*float64(time.Second)), set.Compressed, set.Raw)
	return m, nil
}

func ingestDir(ctx context.Context, o options, path string, unique int, m *Measurement) error {
	dbURL, conn, done, err := freshDB(ctx, o.server)
	if err != nil {
		return err
	}
	defer done()
	meter := startServerMeter()
	if _, err := runChild(o, []string{"DATABASE_URL=" + dbURL}, []string{"ingest", path}, m); err != nil {
		return err
	}
	m.DBCPUSecPerM = meter.perMillion(unique)
	return checkStored(ctx, conn, unique)
}

// runBig streams one object of about o.bigBytes decompressed through
// pgtrail run and pgtrail ingest.
func runBig(ctx context.Context, o options, st *awsStack) ([]Measurement, error) {
	dir, err := os.MkdirTemp("", "pgtrail-bench-big-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "big.json.gz")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	records, raw, err := gen.WriteBig(f, 42, o.bigBytes)
	if err == nil {
		_, err = f.Seek(0, 0)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	fi, _ := f.Stat()
	comp := fi.Size()
	const key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/big.json.gz"
	_, err = st.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(st.bucket), Key: aws.String(key), Body: f})
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	fmt.Printf("big object: %d records, %.0f MB gz, %.0f MB raw\n", records, mb(comp), mb(raw))

	name := fmt.Sprintf("big %.1f GB", float64(raw)/(1<<30))
	mr := Measurement{Name: name + " run", Concurrency: 8, Events: records}
	if err := runQueue(ctx, o, st, []string{key}, 8, records, &mr); err != nil {
		return nil, err
	}
	rate(&mr, time.Duration(mr.Seconds*float64(time.Second)), comp, raw)
	mi := Measurement{Name: name + " ingest", Events: records}
	if err := ingestDir(ctx, o, path, records, &mi); err != nil {
		return nil, err
	}
	rate(&mi, time.Duration(mi.Seconds*float64(time.Second)), comp, raw)
	return []Measurement{mr, mi}, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
