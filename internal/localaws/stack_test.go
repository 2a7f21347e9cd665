package localaws_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pgtrail/pgtrail/internal/localaws"
)

func TestStartRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "example.com:0", "10.1.2.3:0"} {
		if s, err := localaws.Start(t.Context(), localaws.Options{Addr: addr}); err == nil {
			s.Close()
			t.Errorf("Start(%q) succeeded, want an error", addr)
		}
	}
}

func TestStartOwnS3SharedSQS(t *testing.T) {
	t.Parallel()
	shared, ctx := setup(t)
	own, err := localaws.Start(ctx, localaws.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if own.Endpoint == shared.Endpoint {
		t.Fatalf("a new stack got the shared endpoint %s", own.Endpoint)
	}

	// Buckets are per stack.
	bucket := localaws.UniqueName("own")
	if err := own.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if _, err := shared.S3().HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		t.Errorf("bucket %s of one stack is visible in another", bucket)
	}

	// Queues are process-wide, and any stack takes any queue URL.
	q, _, err := own.CreateQueue(ctx, localaws.UniqueName("own"), 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	send(t, ctx, own, q, "across")
	if got := aws.ToString(receiveOne(t, ctx, shared, q).Body); got != "across" {
		t.Errorf("body = %q, want across", got)
	}

	// Shutdown ends a long poll in flight at once.
	done := make(chan error, 1)
	go func() {
		_, err := own.SQS().ReceiveMessage(context.WithoutCancel(ctx), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 20})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	shutdownCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := own.Shutdown(shutdownCtx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v with a long poll in flight", d)
	}
	select {
	case err := <-done:
		t.Logf("long poll at shutdown: err = %v", err)
	case <-time.After(5 * time.Second):
		t.Error("long poll did not end at shutdown")
	}
	if err := own.Close(); err != nil {
		t.Errorf("close after shutdown: %v", err)
	}
}

// TestConcurrentUse runs many clients against goaws at once so that the
// race detector sees goaws' unguarded map accesses if the guard misses one.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	topic, err := s.CreateTopic(ctx, localaws.UniqueName("busy"))
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			errs <- churn(ctx, s, topic, w, rounds)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// churn creates queues, subscribes them, publishes, sends, receives and
// deletes, checking that every message sent arrives.
func churn(ctx context.Context, s *localaws.Stack, topic string, worker, rounds int) error {
	for i := range rounds {
		q, _, err := s.CreateQueue(ctx, localaws.UniqueName(fmt.Sprintf("churn%d", worker)), 30, 2)
		if err != nil {
			return err
		}
		if err := s.Subscribe(ctx, topic, q, true); err != nil {
			return err
		}
		if _, err := s.SNS().Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("fan-out")}); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		body := fmt.Sprintf("w%d-r%d", worker, i)
		if _, err := s.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(body)}); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		seen := map[string]bool{}
		for len(seen) < 2 || !seen[body] {
			out, err := s.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 2, MaxNumberOfMessages: 10})
			if err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			if len(out.Messages) == 0 {
				return errors.New("receive: nothing within 2s; have " + strings.Join(keys(seen), ","))
			}
			for _, m := range out.Messages {
				seen[aws.ToString(m.Body)] = true
				if _, err := s.SQS().DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: m.ReceiptHandle}); err != nil {
					return fmt.Errorf("delete: %w", err)
				}
			}
		}
		if _, _, err := s.QueueDepth(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// keys returns the keys of m.
func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
