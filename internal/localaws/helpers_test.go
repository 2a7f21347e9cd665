package localaws_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pgtrail/pgtrail/internal/localaws"
)

// setup returns the shared stack and the test's context.
func setup(t *testing.T) (*localaws.Stack, context.Context) {
	t.Helper()
	ctx := t.Context()
	s, err := localaws.Shared(ctx)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	return s, ctx
}

// receive long-polls queueURL for up to wait seconds and returns what came.
func receive(t *testing.T, ctx context.Context, s *localaws.Stack, queueURL string, wait int32) []sqstypes.Message {
	t.Helper()
	out, err := s.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(queueURL),
		WaitTimeSeconds:     wait,
		MaxNumberOfMessages: 10,
	})
	if err != nil {
		t.Fatalf("receive from %s: %v", queueURL, err)
	}
	return out.Messages
}

// receiveOne long-polls queueURL and fails unless exactly one message came.
func receiveOne(t *testing.T, ctx context.Context, s *localaws.Stack, queueURL string) sqstypes.Message {
	t.Helper()
	msgs := receive(t, ctx, s, queueURL, 5)
	if len(msgs) != 1 {
		t.Fatalf("receive from %s: got %d messages, want 1", queueURL, len(msgs))
	}
	return msgs[0]
}

// send sends body to queueURL.
func send(t *testing.T, ctx context.Context, s *localaws.Stack, queueURL, body string) {
	t.Helper()
	_, err := s.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)})
	if err != nil {
		t.Fatalf("send to %s: %v", queueURL, err)
	}
}

// wantDepth fails unless the queue holds the given numbers of visible and
// in-flight messages.
func wantDepth(t *testing.T, ctx context.Context, s *localaws.Stack, queueURL string, visible, inFlight int) {
	t.Helper()
	v, f, err := s.QueueDepth(ctx, queueURL)
	if err != nil {
		t.Fatal(err)
	}
	if v != visible || f != inFlight {
		t.Fatalf("depth of %s = %d visible, %d in flight; want %d, %d", queueURL, v, f, visible, inFlight)
	}
}
