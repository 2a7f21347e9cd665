package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pgtrail/pgtrail/internal/localaws"
)

// TestDLQListAndRedrive sends four poison messages through pgtrail run: one
// naming an object that is not gzip, one naming an object that does not
// exist, two that are no notification (one of them the fault suite's). They land in the dead-letter queue;
// dlq list shows each with the error the worker recorded for its object,
// twice, so without consuming them; dlq redrive moves each back to the
// queue exactly once (goaws has no StartMessageMoveTask: the fallback).
func TestDLQListAndRedrive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon against the emulators")
	}
	stack := useLocalAWS(t)
	ctx := t.Context()
	db := migrated(t)
	queueURL, dlqURL, err := stack.CreateQueue(ctx, localaws.UniqueName("dlqcmd"), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	bucket := strings.ToLower(localaws.UniqueName("dlqcmd"))
	if err := stack.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	brokenKey := "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/broken.json.gz"
	missingKey := "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/missing.json.gz"
	if _, err := stack.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(brokenKey),
		Body: bytes.NewReader([]byte("\x1f\x8b\x08garbage"))}); err != nil {
		t.Fatal(err)
	}
	bodies := []string{
		fmt.Sprintf(`{"s3Bucket":%q,"s3ObjectKey":[%q]}`, bucket, brokenKey),
		fmt.Sprintf(`{"s3Bucket":%q,"s3ObjectKey":[%q]}`, bucket, missingKey),
		"this is not a notification",
		`{"hello":"this is not a notification"}`, // the fault suite's poison
	}
	for _, b := range bodies {
		if _, err := stack.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"DATABASE_URL": db, "SQS_QUEUE_URL": queueURL, "PGTRAIL_HTTP_ADDR": "", "PGTRAIL_WAIT_TIME": "1s",
		"S3_FORCE_PATH_STYLE": "true", "PGTRAIL_VISIBILITY_TIMEOUT": "2s", "PGTRAIL_LOG_LEVEL": "warn",
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	code, _, stderr := runCommand(t, rctx, env, "run", "-drain")
	cancel()
	if code != 0 {
		t.Fatalf("run -drain: exit %d\n%s", code, stderr)
	}
	waitDepth(t, stack, dlqURL, len(bodies))

	code, out, stderr := runCommand(t, ctx, env, "dlq", "list", "-n", "10")
	if code != 0 {
		t.Fatalf("dlq list: exit %d\n%s\n%s", code, out, stderr)
	}
	t.Logf("dlq list:\n%s", out)
	for _, want := range []string{
		"dead-letter queue " + dlqURL + ": ~4 messages",
		"s3://" + bucket + "/" + brokenKey, "gzip",
		"s3://" + bucket + "/" + missingKey, "NoSuchKey",
		"(permanent)", `{\"hello\":\"this is not a notification\"}`,
		"not a notification pgtrail understands", `"this is not a notification"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq list lacks %q", want)
		}
	}
	if n := strings.Count(out, ". message "); n != 4 {
		t.Errorf("dlq list shows %d messages, want 4", n)
	}
	// Not consumed: all three are visible again at once, and a second
	// list sees them.
	if visible, inFlight, err := stack.QueueDepth(ctx, dlqURL); err != nil || visible != 4 || inFlight != 0 {
		t.Errorf("after dlq list: %d visible, %d in flight, %v; want 4 and 0", visible, inFlight, err)
	}
	code, out, _ = runCommand(t, ctx, env, "dlq", "list", "-n", "1")
	if code != 0 || strings.Count(out, ". message ") != 1 || !strings.Contains(out, "showing 1 of ~4") {
		t.Errorf("dlq list -n 1: exit %d\n%s", code, out)
	}

	code, out, stderr = runCommand(t, ctx, env, "dlq", "redrive", "-max-per-second", "5")
	t.Logf("dlq redrive:\n%s", out)
	if code != 0 {
		t.Fatalf("dlq redrive: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"moving ~4 messages", "SQS cannot move them itself", "moved 4 messages"} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq redrive lacks %q", want)
		}
	}
	if visible, inFlight, err := stack.QueueDepth(ctx, dlqURL); err != nil || visible+inFlight != 0 {
		t.Errorf("dead-letter queue after redrive: %d visible, %d in flight, %v; want empty", visible, inFlight, err)
	}
	var got []string
	for range 10 {
		o, err := stack.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range o.Messages {
			got = append(got, aws.ToString(m.Body))
		}
		if len(got) >= len(bodies) && len(o.Messages) == 0 {
			break
		}
	}
	slices.Sort(got)
	want := slices.Clone(bodies)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the queue holds %q after redrive, want each message once: %q", got, want)
	}
}

// waitDepth waits until the queue holds n messages, visible or not.
func waitDepth(t *testing.T, stack *localaws.Stack, url string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		visible, inFlight, err := stack.QueueDepth(t.Context(), url)
		if err == nil && visible+inFlight == n {
			if inFlight == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d visible, %d in flight (%v); want %d", url, visible, inFlight, err, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
