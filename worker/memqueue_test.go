package worker_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// memQueue is an SQS queue in memory, with what the emulator lacks for
// these tests: a true ApproximateReceiveCount, and a count of every call.
// A long poll waits at most 100 ms.
type memQueue struct {
	mu       sync.Mutex
	msgs     []*memMessage
	receives int // ReceiveMessage calls
	releases int // ChangeMessageVisibility to 0
	extends  int // ChangeMessageVisibility to more than 0
	deleted  []string
	handles  int
	counts   map[string]int // receives of every message, deleted or not
}

type memMessage struct {
	id, body, handle string
	received         int
	hiddenUntil      time.Time
}

func (q *memQueue) send(body string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, &memMessage{id: fmt.Sprintf("m%d", len(q.msgs)+len(q.deleted)+1), body: body})
}

// receivedCount returns how many times the message with id was received.
func (q *memQueue) receivedCount(id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.counts[id]
}

// stats returns the calls counted so far.
func (q *memQueue) stats() (receives, releases, extends, deleted int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.receives, q.releases, q.extends, len(q.deleted)
}

func (q *memQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	q.receives++
	q.mu.Unlock()
	wait := time.NewTimer(min(time.Duration(in.WaitTimeSeconds)*time.Second, 100*time.Millisecond))
	defer wait.Stop()
	for {
		if out := q.take(int(in.MaxNumberOfMessages), time.Duration(in.VisibilityTimeout)*time.Second); len(out) > 0 {
			return &sqs.ReceiveMessageOutput{Messages: out}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
			return &sqs.ReceiveMessageOutput{}, nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (q *memQueue) take(n int, visibility time.Duration) []types.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []types.Message
	now := time.Now()
	for _, m := range q.msgs {
		if len(out) == n {
			break
		}
		if now.Before(m.hiddenUntil) {
			continue
		}
		q.handles++
		m.received++
		if q.counts == nil {
			q.counts = map[string]int{}
		}
		q.counts[m.id] = m.received
		m.handle = fmt.Sprintf("%s-%d", m.id, q.handles)
		m.hiddenUntil = now.Add(visibility)
		out = append(out, types.Message{
			MessageId: aws.String(m.id), Body: aws.String(m.body), ReceiptHandle: aws.String(m.handle),
			Attributes: map[string]string{
				string(types.MessageSystemAttributeNameApproximateReceiveCount): strconv.Itoa(m.received),
			},
		})
	}
	return out
}

func (q *memQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if m.handle == aws.ToString(in.ReceiptHandle) {
			m.hiddenUntil = time.Now().Add(time.Duration(in.VisibilityTimeout) * time.Second)
			if in.VisibilityTimeout == 0 {
				q.releases++
			} else {
				q.extends++
			}
			return &sqs.ChangeMessageVisibilityOutput{}, nil
		}
	}
	return nil, fmt.Errorf("receipt handle %s is not in flight", aws.ToString(in.ReceiptHandle))
}

func (q *memQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		i := -1
		for j, m := range q.msgs {
			if m.handle == aws.ToString(e.ReceiptHandle) {
				i = j
			}
		}
		if i < 0 {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true})
			continue
		}
		q.deleted = append(q.deleted, q.msgs[i].id)
		q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}
