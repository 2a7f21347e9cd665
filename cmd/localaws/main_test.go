package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// vars parses NAME=value lines.
func vars(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-queue", "demo", "-bucket", "demo-logs", "-topic", "demo", "-visibility", "5"}, &stdout, &stderr)
	}()

	var v map[string]string
	for deadline := time.Now().Add(5 * time.Second); ; {
		v = vars(stdout.String())
		if v["TOPIC_ARN"] != "" {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no TOPIC_ARN printed; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "QUEUE_URL", "DLQ_URL", "BUCKET"} {
		if v[k] == "" {
			t.Errorf("%s not printed", k)
		}
	}
	// The host of queue URLs is that of the first stack of the process,
	// which with -count above 1 is not this one.
	if !strings.HasSuffix(v["QUEUE_URL"], "/000000000000/demo") {
		t.Errorf("queue URL %s does not name the demo queue", v["QUEUE_URL"])
	}

	// A client configured only from the printed variables reaches the queue
	// through the topic.
	cfg := aws.Config{
		Region:       v["AWS_REGION"],
		Credentials:  credentials.NewStaticCredentialsProvider(v["AWS_ACCESS_KEY_ID"], v["AWS_SECRET_ACCESS_KEY"], ""),
		BaseEndpoint: aws.String(v["AWS_ENDPOINT_URL"]),
	}
	if _, err := sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{TopicArn: aws.String(v["TOPIC_ARN"]), Message: aws.String("hi")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	out, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(v["QUEUE_URL"]), WaitTimeSeconds: 5})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if len(out.Messages) != 1 || !strings.Contains(aws.ToString(out.Messages[0].Body), `"Type":"Notification"`) {
		t.Errorf("received %d messages, want one SNS notification", len(out.Messages))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(shutdownGrace + time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	err := run(t.Context(), []string{"-addr", "0.0.0.0:4566"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("run = %v, want a not-loopback error", err)
	}
}
