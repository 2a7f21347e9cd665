package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pgtrail/pgtrail/internal/localaws"
)

// seedBatch is how many keys one notification names; CloudTrail sends one
// or a few.
const seedBatch = 5

// seed uploads dir into bucket and announces its objects with CloudTrail's
// own notification, {"s3Bucket": …, "s3ObjectKey": […]}, published to the
// topic (which wraps it in an SNS envelope) or, without a topic, sent to the
// queue. It returns the number of objects.
func seed(ctx context.Context, stack *localaws.Stack, dir, bucket, topicARN, queueURL string) (int, error) {
	keys, err := stack.UploadDir(ctx, bucket, dir)
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(keys); i += seedBatch {
		body, err := json.Marshal(map[string]any{"s3Bucket": bucket, "s3ObjectKey": keys[i:min(i+seedBatch, len(keys))]})
		if err != nil {
			return 0, err
		}
		if topicARN != "" {
			_, err = stack.SNS().Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topicARN), Message: aws.String(string(body))})
		} else {
			_, err = stack.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body))})
		}
		if err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
