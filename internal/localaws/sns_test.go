package localaws_test

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pgtrail/pgtrail/internal/localaws"
)

func TestPublishToSubscribedQueue(t *testing.T) {
	t.Parallel()
	const message = `{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/x.json.gz"]}`
	for _, raw := range []bool{false, true} {
		name := "wrapped"
		if raw {
			name = "raw"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, ctx := setup(t)
			topic, err := s.CreateTopic(ctx, localaws.UniqueName("topic"))
			if err != nil {
				t.Fatal(err)
			}
			q, _, err := s.CreateQueue(ctx, localaws.UniqueName("sub"), 30, 3)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Subscribe(ctx, topic, q, raw); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SNS().Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(message)}); err != nil {
				t.Fatalf("publish: %v", err)
			}

			body := aws.ToString(receiveOne(t, ctx, s, q).Body)
			if raw {
				if body != message {
					t.Errorf("raw body = %s, want %s", body, message)
				}
				return
			}
			var envelope struct{ Type, Message, TopicArn string }
			if err := json.Unmarshal([]byte(body), &envelope); err != nil {
				t.Fatalf("decode envelope %s: %v", body, err)
			}
			if envelope.Type != "Notification" || envelope.Message != message || envelope.TopicArn != topic {
				t.Errorf("envelope = %+v, want a Notification of %s from %s", envelope, message, topic)
			}
		})
	}
}
