package worker_test

import (
	"bytes"

	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/retry"

	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// corpusDir is the shared CloudTrail corpus's S3 tree, or skips the test.
func corpusDir(t *testing.T) string { return filepath.Join(corpus.Dir(t), "s3") }

// env is one end-to-end test's world: a queue with its dead-letter queue, a
// bucket, a topic subscribed to the queue, and a migrated database.
type env struct {
	t        *testing.T
	ctx      context.Context
	aws      *localaws.Stack
	queueURL string
	dlqURL   string
	topicARN string
	bucket   string
	pg       *sink.Postgres
}

func setupE2E(t *testing.T, visibility, maxReceive int) *env {
	t.Helper()
	ctx := context.Background()
	s, err := localaws.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, aws: s, bucket: localaws.UniqueName("trail")}
	if e.queueURL, e.dlqURL, err = s.CreateQueue(ctx, localaws.UniqueName("q"), visibility, maxReceive); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, e.bucket); err != nil {
		t.Fatal(err)
	}
	if e.topicARN, err = s.CreateTopic(ctx, localaws.UniqueName("topic")); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, e.topicARN, e.queueURL, false); err != nil {
		t.Fatal(err)
	}
	e.pg, err = sink.Open(ctx, sink.Config{URL: pgtest.New(t), MaxConns: 8}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pg.Close)
	if _, err := e.pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) config() worker.Config {
	return worker.Config{
		QueueURL:          e.queueURL,
		Pollers:           2,
		ObjectConcurrency: 4,
		WaitTime:          time.Second,
		VisibilityTimeout: 4 * time.Second,
		ShutdownGrace:     10 * time.Second,
		Backoff:           retry.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond, Attempts: 3},
	}
}

// start runs a worker until the test ends or stop is called.
func (e *env) start(cfg worker.Config) (stop func()) {
	log := zaptest.NewLogger(e.t)
	m := worker.NewMetrics(prometheus.NewRegistry())
	proc := worker.NewProcessor(cfg, e.aws.S3(), e.pg, e.pg, m, log)
	w := worker.New(cfg, e.aws.SQS(), proc, m, log)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("worker.Run: %v", err)
		}
	}
	e.t.Cleanup(stop)
	return stop
}

// publish sends body through the SNS topic, which wraps it in an envelope.
func (e *env) publish(body string) {
	e.t.Helper()
	if _, err := e.aws.SNS().Publish(e.ctx, &sns.PublishInput{TopicArn: aws.String(e.topicARN), Message: aws.String(body)}); err != nil {
		e.t.Fatal(err)
	}
}

// send puts body on the queue as it is.
func (e *env) send(body string) {
	e.t.Helper()
	if _, err := e.aws.SQS().SendMessage(e.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.queueURL), MessageBody: aws.String(body)}); err != nil {
		e.t.Fatal(err)
	}
}

// cloudTrailBody is CloudTrail's own notification for keys.
func cloudTrailBody(bucket string, keys ...string) string {
	b, _ := json.Marshal(map[string]any{"s3Bucket": bucket, "s3ObjectKey": keys})
	return string(b)
}

// waitFor polls cond until it holds or the timeout passes.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// depth is the number of messages visible or in flight on a queue.
func (e *env) depth(queueURL string) int {
	e.t.Helper()
	v, f, err := e.aws.QueueDepth(e.ctx, queueURL)
	if err != nil {
		e.t.Fatal(err)
	}
	return v + f
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pg.Pool().QueryRow(e.ctx, q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// put uploads one object.
func (e *env) put(key string, body []byte) {
	e.t.Helper()
	_, err := e.aws.S3().PutObject(e.ctx, &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	})
	if err != nil {
		e.t.Fatal(err)
	}
}
