package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/alert"
	"github.com/pgtrail/pgtrail/internal/localaws"
)

// snsQueue is an SNS topic on the local emulator with a queue subscribed,
// as an email or SMS subscriber would be.
type snsQueue struct {
	stack    *localaws.Stack
	topicARN string
	queueURL string
}

func newSNSQueue(t *testing.T) *snsQueue {
	t.Helper()
	ctx := context.Background()
	s, err := localaws.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := &snsQueue{stack: s}
	if q.queueURL, _, err = s.CreateQueue(ctx, localaws.UniqueName("alerts"), 30, 0); err != nil {
		t.Fatal(err)
	}
	if q.topicARN, err = s.CreateTopic(ctx, localaws.UniqueName("alerts")); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, q.topicARN, q.queueURL, false); err != nil {
		t.Fatal(err)
	}
	return q
}

// snsNotification is the envelope SNS wraps a message in for a queue.
// SNS names an attribute's parts Type and Value; the emulator, DataType
// and StringValue.
type snsNotification struct {
	Type              string
	Subject           string
	Message           string
	MessageAttributes map[string]struct{ Type, Value, DataType, StringValue string }
}

// attr is the value of a message attribute, as SNS or the emulator names it.
func (n *snsNotification) attr(name string) string {
	a := n.MessageAttributes[name]
	if a.Value != "" {
		return a.Value
	}
	return a.StringValue
}

// receive takes every message on the queue until it has been empty for a
// second, and deletes them.
func (q *snsQueue) receive(t *testing.T) []snsNotification {
	t.Helper()
	ctx := context.Background()
	var out []snsNotification
	empty := 0
	for empty < 2 {
		res, err := q.stack.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.queueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			empty++
			continue
		}
		empty = 0
		for _, m := range res.Messages {
			var n snsNotification
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &n); err != nil {
				t.Fatalf("%s: %v", aws.ToString(m.Body), err)
			}
			out = append(out, n)
			if _, err := q.stack.SQS().DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.queueURL),
				ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// TestRelayToSNSTopic publishes alerts to a topic on the emulator, which a
// queue subscribes to: each arrives once, with its attributes.
func TestRelayToSNSTopic(t *testing.T) {
	t.Parallel()
	pg := migrated(t)
	q := newSNSQueue(t)
	ids := map[string]bool{}
	for i := range 7 {
		ids[store(t, pg, "rule-sns", fmt.Sprintf("e%d", i), time.Now())] = true
	}
	r := alert.NewRelay(fastConfig(), pg, []alert.Destination{&alert.SNS{Client: q.stack.SNS(), TopicARN: q.topicARN}}, nil, zaptest.NewLogger(t))
	drain(t, r, 10*time.Second)
	got := q.receive(t)
	if len(got) != 7 {
		t.Fatalf("%d messages on the subscribed queue, want 7", len(got))
	}
	for i := range got {
		n := &got[i]
		var p alert.Payload
		if err := json.Unmarshal([]byte(n.Message), &p); err != nil {
			t.Fatal(err)
		}
		if !ids[p.ID] {
			t.Errorf("message for alert %s, not one stored, or twice", p.ID)
		}
		delete(ids, p.ID)
		if n.attr("rule_id") != "rule-sns" || n.attr("level") != "high" || n.attr("alert_id") != p.ID ||
			n.Subject != "[HIGH] Rule rule-sns" {
			t.Errorf("envelope %+v", n)
		}
	}
}
