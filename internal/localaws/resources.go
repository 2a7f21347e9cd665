package localaws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// UniqueName returns prefix followed by a dash and 12 random hex digits,
// a name no other test of the process will pick. It suits queues, topics
// and, with a lowercase prefix, buckets.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails.
	return prefix + "-" + hex.EncodeToString(b)
}

// CreateQueue creates the queue name with the given visibility timeout in
// seconds and returns its URL. When maxReceiveCount is positive it first
// creates the dead-letter queue "<name>-dlq" and gives the queue a redrive
// policy to it, and returns the DLQ's URL too; otherwise dlqURL is empty.
// Creating a queue that exists returns its URL and leaves its attributes
// as they were.
func (s *Stack) CreateQueue(ctx context.Context, name string, visibilityTimeout, maxReceiveCount int) (queueURL, dlqURL string, err error) {
	attrs := map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout): strconv.Itoa(visibilityTimeout),
	}
	if maxReceiveCount > 0 {
		dlq, err := s.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
		if err != nil {
			return "", "", fmt.Errorf("sqs: create queue %s-dlq: %w", name, err)
		}
		dlqURL = aws.ToString(dlq.QueueUrl)
		dlqARN, err := s.QueueARN(ctx, dlqURL)
		if err != nil {
			return "", "", err
		}
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = fmt.Sprintf(
			`{"maxReceiveCount":"%d","deadLetterTargetArn":"%s"}`, maxReceiveCount, dlqARN)
	}
	out, err := s.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("sqs: create queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), dlqURL, nil
}

// QueueARN returns the ARN of the queue at queueURL.
func (s *Stack) QueueARN(ctx context.Context, queueURL string) (string, error) {
	out, err := s.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("sqs: get arn of %s: %w", queueURL, err)
	}
	return out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}

// QueueDepth returns how many messages of the queue at queueURL can be
// received now and how many are in flight (received, not yet deleted, and
// still invisible). goaws counts in-flight messages in
// ApproximateNumberOfMessages, so visible is that count minus the
// invisible ones; delayed messages count as in flight.
func (s *Stack) QueueDepth(ctx context.Context, queueURL string) (visible, inFlight int, err error) {
	out, err := s.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sqs: get depth of %s: %w", queueURL, err)
	}
	total, err := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	if err != nil {
		return 0, 0, fmt.Errorf("sqs: depth of %s: %w", queueURL, err)
	}
	inFlight, err = strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	if err != nil {
		return 0, 0, fmt.Errorf("sqs: in-flight count of %s: %w", queueURL, err)
	}
	return total - inFlight, inFlight, nil
}

// CreateTopic creates the SNS topic name and returns its ARN.
func (s *Stack) CreateTopic(ctx context.Context, name string) (string, error) {
	out, err := s.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("sns: create topic %s: %w", name, err)
	}
	return aws.ToString(out.TopicArn), nil
}

// Subscribe subscribes the queue at queueURL to the topic. With raw, the
// queue receives each message as published (raw message delivery);
// without, wrapped in the JSON envelope of "Type":"Notification" whose
// Message field holds it.
func (s *Stack) Subscribe(ctx context.Context, topicARN, queueURL string, raw bool) error {
	queueARN, err := s.QueueARN(ctx, queueURL)
	if err != nil {
		return err
	}
	_, err = s.sns.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:   aws.String(topicARN),
		Protocol:   aws.String("sqs"),
		Endpoint:   aws.String(queueARN),
		Attributes: map[string]string{"RawMessageDelivery": strconv.FormatBool(raw)},
	})
	if err != nil {
		return fmt.Errorf("sns: subscribe %s to %s: %w", queueARN, topicARN, err)
	}
	return nil
}

// CreateBucket creates the S3 bucket name.
func (s *Stack) CreateBucket(ctx context.Context, name string) error {
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("s3: create bucket %s: %w", name, err)
	}
	return nil
}

// UploadDir uploads every regular file under dir to bucket, byte for byte
// and without content type or encoding, with the file's slash-separated
// path relative to dir as its key. It returns the keys in lexical order.
func (s *Stack) UploadDir(ctx context.Context, bucket, dir string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if err := s.putFile(ctx, bucket, key, path); err != nil {
			return err
		}
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("s3: upload %s to %s: %w", dir, bucket, err)
	}
	return keys, nil
}

// putFile uploads the file at path as bucket/key.
func (s *Stack) putFile(ctx context.Context, bucket, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: f})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}
