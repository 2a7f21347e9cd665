package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
)

// queueStatus is one queue's attributes.
type queueStatus struct {
	URL                        string
	Visible, InFlight, Delayed int64
	Visibility, Retention      time.Duration
	MaxReceiveCount            int    // from the redrive policy; 0 without one
	DLQARN                     string // from the redrive policy
	Err                        error
}

// oldestAge is CloudWatch's ApproximateAgeOfOldestMessage of the queue.
type oldestAge struct {
	Age time.Duration
	At  time.Time // the datapoint's time; zero when there is none
	Err error
}

// readQueues reads the queue, its dead-letter queue and, from CloudWatch,
// the age of its oldest message.
func readQueues(ctx context.Context, queueURL string, timeout time.Duration) (q, dlq *queueStatus, oldest oldestAge) {
	q = &queueStatus{URL: queueURL}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		q.Err = fmt.Errorf("aws config: %w", err)
		return q, nil, oldestAge{Err: q.Err}
	}
	client := sqs.NewFromConfig(awsCfg)

	done := make(chan struct{})
	go func() {
		defer close(done)
		oldest = readOldestAge(ctx, cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) { o.RetryMaxAttempts = 1 }),
			queueName(queueURL), timeout)
	}()
	defer func() { <-done }()

	readQueue(ctx, client, q, timeout)
	if q.Err != nil || q.DLQARN == "" {
		return q, nil, oldest
	}
	dlq = &queueStatus{}
	name, account, err := parseQueueARN(q.DLQARN)
	if err != nil {
		dlq.Err = err
		return q, dlq, oldest
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in := &sqs.GetQueueUrlInput{QueueName: aws.String(name)}
	if account != "" {
		in.QueueOwnerAWSAccountId = aws.String(account)
	}
	out, err := client.GetQueueUrl(tctx, in)
	if err != nil {
		dlq.URL = q.DLQARN
		dlq.Err = fmt.Errorf("sqs: get url of %s: %w", q.DLQARN, err)
		return q, dlq, oldest
	}
	dlq.URL = aws.ToString(out.QueueUrl)
	readQueue(ctx, client, dlq, timeout)
	return q, dlq, oldest
}

// readQueue fills q from GetQueueAttributes.
func readQueue(ctx context.Context, client *sqs.Client, q *queueStatus, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
			types.QueueAttributeNameVisibilityTimeout,
			types.QueueAttributeNameMessageRetentionPeriod,
			types.QueueAttributeNameRedrivePolicy,
		},
	})
	if err != nil {
		q.Err = fmt.Errorf("sqs: get attributes of %s: %w", q.URL, err)
		return
	}
	attr := func(name types.QueueAttributeName) int64 {
		n, _ := strconv.ParseInt(out.Attributes[string(name)], 10, 64)
		return n
	}
	q.Visible = attr(types.QueueAttributeNameApproximateNumberOfMessages)
	q.InFlight = attr(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
	q.Delayed = attr(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)
	q.Visibility = time.Duration(attr(types.QueueAttributeNameVisibilityTimeout)) * time.Second
	q.Retention = time.Duration(attr(types.QueueAttributeNameMessageRetentionPeriod)) * time.Second
	if raw := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]; raw != "" {
		// maxReceiveCount is a number in AWS's answers and a string in
		// some emulators'.
		var rp struct {
			DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
			MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(raw), &rp); err != nil {
			q.Err = fmt.Errorf("sqs: redrive policy of %s: %w", q.URL, err)
			return
		}
		q.DLQARN = rp.DeadLetterTargetArn
		q.MaxReceiveCount, _ = strconv.Atoi(strings.Trim(string(rp.MaxReceiveCount), `"`))
	}
}

// parseQueueARN returns the queue name and account of arn:aws:sqs:REGION:ACCOUNT:NAME.
func parseQueueARN(arn string) (name, account string, err error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[5] == "" {
		return "", "", fmt.Errorf("sqs: dead-letter target %q is not a queue ARN", arn)
	}
	return parts[5], parts[4], nil
}

// queueName is the last path segment of a queue URL.
func queueName(queueURL string) string {
	return queueURL[strings.LastIndex(queueURL, "/")+1:]
}

// readOldestAge asks CloudWatch for the latest ApproximateAgeOfOldestMessage
// of the queue over the last 15 minutes. SQS itself does not expose it, and
// receiving a message to look at it would count towards its moves to the
// dead-letter queue.
func readOldestAge(ctx context.Context, cw *cloudwatch.Client, queue string, timeout time.Duration) oldestAge {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	end := time.Now().Truncate(time.Minute).Add(time.Minute)
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(end.Add(-15 * time.Minute)),
		EndTime:   aws.Time(end),
		ScanBy:    cwtypes.ScanByTimestampDescending,
		MetricDataQueries: []cwtypes.MetricDataQuery{{
			Id: aws.String("age"),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{
					Namespace:  aws.String("AWS/SQS"),
					MetricName: aws.String("ApproximateAgeOfOldestMessage"),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("QueueName"), Value: aws.String(queue)}},
				},
				Period: aws.Int32(60),
				Stat:   aws.String("Maximum"),
			},
		}},
	})
	if err != nil {
		return oldestAge{Err: fmt.Errorf("cloudwatch: %w", err)}
	}
	for _, r := range out.MetricDataResults {
		if len(r.Values) > 0 && len(r.Timestamps) > 0 {
			return oldestAge{Age: time.Duration(r.Values[0] * float64(time.Second)), At: r.Timestamps[0]}
		}
	}
	return oldestAge{}
}

// queueAttributes is what checkQueue needs from SQS.
type queueAttributes interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// checkQueueTimeout bounds checkQueue, retries and credential look-ups
// included.
const checkQueueTimeout = 30 * time.Second

// checkQueue reads the queue's redrive policy once, which proves that there
// are credentials, that they may read the queue, and that the queue exists
// in the region: its error names what to fix, the credential chain or
// SQS_QUEUE_URL. It warns when the queue has no redrive policy, with which
// a message that cannot be processed would be received again and again.
func checkQueue(ctx context.Context, creds aws.CredentialsProvider, q queueAttributes, queueURL string, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, checkQueueTimeout)
	defer cancel()
	if creds == nil {
		return errors.New("aws credentials: none configured")
	}
	if _, err := creds.Retrieve(ctx); err != nil {
		return fmt.Errorf("aws credentials: none found in the default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "+
			"AWS_PROFILE and the shared config files, AWS_WEB_IDENTITY_TOKEN_FILE, the ECS task role, the EC2 instance role): %w", err)
	}
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			switch code := ae.ErrorCode(); {
			case slices.Contains(noQueue, code):
				return fmt.Errorf("SQS_QUEUE_URL: no queue %s (check the URL and AWS_REGION): %s", queueURL, code)
			case strings.Contains(code, "AccessDenied") || slices.Contains(refusedCredentials, code):
				return fmt.Errorf("aws credentials: refused for the queue in SQS_QUEUE_URL %s (%s: %s): check the identity the "+
					"credential chain found and its policy (deploy/IAM.md)", queueURL, code, ae.ErrorMessage())
			}
		}
		return fmt.Errorf("SQS_QUEUE_URL: cannot read the queue %s: %w", queueURL, err)
	}
	if out.Attributes[string(types.QueueAttributeNameRedrivePolicy)] == "" {
		log.Warn("the queue has no redrive policy: a message that cannot be processed will be received again and again; "+
			"give the queue a dead-letter queue (maxReceiveCount 5)", zap.String("queue", queueURL))
	}
	return nil
}

// noQueue are the error codes with which SQS says there is no such queue:
// QueueDoesNotExist, or the query protocol's name for it; InvalidAddress
// for a URL that is not one of the endpoint's; InvalidParameterValue from
// goaws, the emulator, for a queue it does not have.
var noQueue = []string{"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "InvalidAddress",
	"AWS.SimpleQueueService.InvalidParameterValue"}

// refusedCredentials are the error codes with which AWS refuses the
// credentials themselves.
var refusedCredentials = []string{
	"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidSignatureException",
	"ExpiredToken", "ExpiredTokenException", "MissingAuthenticationToken", "IncompleteSignature", "InvalidSecurity",
}
