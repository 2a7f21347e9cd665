package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pgtrail/pgtrail/internal/localaws"
)

// lostDeletes is the emulator's SQS with the first delete of every message
// lost: the message is made visible again instead, as when a delete fails
// or the visibility timeout ends before it.
type lostDeletes struct {
	*sqs.Client
	mu     sync.Mutex
	lost   map[string]bool // receipt handles whose delete was lost
	byHand map[string]int  // sends, by body
}

func (l *lostDeletes) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	l.mu.Lock()
	l.byHand[aws.ToString(in.MessageBody)]++
	l.mu.Unlock()
	return l.Client.SendMessage(ctx, in, opts...)
}

func (l *lostDeletes) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	l.mu.Lock()
	first := len(l.lost) < 2 && !l.lost[aws.ToString(in.ReceiptHandle)]
	if first {
		l.lost[aws.ToString(in.ReceiptHandle)] = true
	}
	l.mu.Unlock()
	if first {
		if _, err := l.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: in.QueueUrl,
			ReceiptHandle: in.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			return nil, err
		}
		return nil, errors.New("delete lost")
	}
	return l.Client.DeleteMessage(ctx, in, opts...)
}

// TestRedriveByHandSendsEachMessageOnce: a message received again after its
// send, because its delete was lost, is deleted and not sent again.
func TestRedriveByHandSendsEachMessageOnce(t *testing.T) {
	stack, err := localaws.Shared(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	src, _, err := stack.CreateQueue(ctx, localaws.UniqueName("byhand"), 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	dlq, _, err := stack.CreateQueue(ctx, localaws.UniqueName("byhand-dlq"), 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	bodies := []string{"a", "b", "c", "d", "e"}
	for _, b := range bodies {
		if _, err := stack.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	fake := &lostDeletes{Client: stack.SQS(), lost: map[string]bool{}, byHand: map[string]int{}}
	q := &dlqQueues{client: fake, sourceURL: src, dlqURL: dlq, visible: 5}
	var out strings.Builder
	moved, err := q.moveByHand(ctx, &out, 0, 5*time.Second)
	if err != nil || moved != 5 {
		t.Fatalf("moved %d, %v; want 5\n%s", moved, err, out.String())
	}
	if len(fake.lost) != 2 {
		t.Errorf("%d deletes lost, the test meant 2", len(fake.lost))
	}
	for _, b := range bodies {
		if fake.byHand[b] != 1 {
			t.Errorf("message %q sent %d times, want once", b, fake.byHand[b])
		}
	}
	if visible, inFlight, err := stack.QueueDepth(ctx, dlq); err != nil || visible+inFlight != 0 {
		t.Errorf("dead-letter queue: %d visible, %d in flight, %v; want empty", visible, inFlight, err)
	}
	if visible, _, err := stack.QueueDepth(ctx, src); err != nil || visible != 5 {
		t.Errorf("queue: %d visible, %v; want 5", visible, err)
	}
}

// moveTaskSQS answers like SQS where message move tasks exist.
type moveTaskSQS struct {
	dlqSQS
	started *sqs.StartMessageMoveTaskInput
	polls   int
}

func (m *moveTaskSQS) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	name := queueName(aws.ToString(in.QueueUrl))
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"QueueArn": "arn:aws:sqs:eu-west-1:111122223333:" + name}}, nil
}

func (m *moveTaskSQS) StartMessageMoveTask(_ context.Context, in *sqs.StartMessageMoveTaskInput, _ ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error) {
	m.started = in
	return &sqs.StartMessageMoveTaskOutput{TaskHandle: aws.String("handle")}, nil
}

func (m *moveTaskSQS) ListMessageMoveTasks(context.Context, *sqs.ListMessageMoveTasksInput, ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error) {
	m.polls++
	r := types.ListMessageMoveTasksResultEntry{Status: aws.String("RUNNING"), ApproximateNumberOfMessagesMoved: 4,
		ApproximateNumberOfMessagesToMove: aws.Int64(9)}
	if m.polls > 1 {
		r.Status, r.ApproximateNumberOfMessagesMoved = aws.String("COMPLETED"), 9
	}
	return &sqs.ListMessageMoveTasksOutput{Results: []types.ListMessageMoveTasksResultEntry{r}}, nil
}

// TestRedriveUsesMoveTask: where SQS has StartMessageMoveTask, redrive asks
// it to move from the dead-letter queue to the queue at the given rate and
// reports the task's progress until it completes.
func TestRedriveUsesMoveTask(t *testing.T) {
	old := moveTaskPoll
	moveTaskPoll = 10 * time.Millisecond
	t.Cleanup(func() { moveTaskPoll = old })
	fake := &moveTaskSQS{}
	q := &dlqQueues{client: fake, sourceURL: "https://sqs.eu-west-1.amazonaws.com/111122223333/trail",
		dlqURL: "https://sqs.eu-west-1.amazonaws.com/111122223333/trail-dlq", visible: 9}
	var out strings.Builder
	moved, err := q.moveTask(t.Context(), &out, 3, time.Second)
	if err != nil || moved != 9 {
		t.Fatalf("moved %d, %v; want 9", moved, err)
	}
	if s := fake.started; aws.ToString(s.SourceArn) != "arn:aws:sqs:eu-west-1:111122223333:trail-dlq" ||
		aws.ToString(s.DestinationArn) != "arn:aws:sqs:eu-west-1:111122223333:trail" || aws.ToInt32(s.MaxNumberOfMessagesPerSecond) != 3 {
		t.Errorf("StartMessageMoveTask(%+v)", s)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !slices.Equal(lines, []string{"moved 4 of 9 (RUNNING)", "moved 9 of 9 (COMPLETED)"}) {
		t.Errorf("progress:\n%s", out.String())
	}
}
