package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

const dlqUsage = `usage: pgtrail dlq list [-n N] [-dlq URL]
       pgtrail dlq redrive [-max-per-second N] [-dlq URL]

list     shows the messages in the dead-letter queue of SQS_QUEUE_URL, the objects each
         names and the last error pgtrail recorded for each object; the messages stay
         in the queue
redrive  moves the messages back to SQS_QUEUE_URL, once the cause is fixed

The dead-letter queue is the one the queue's redrive policy names, or -dlq.
Run "pgtrail dlq list -h" or "pgtrail dlq redrive -h" for the flags.
`

// cmdDLQ is pgtrail dlq: list or redrive.
func cmdDLQ(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(a.stderr, dlqUsage)
		if wantsHelp(args) {
			return exitError(exitOK)
		}
		return exitError(exitUsage)
	}
	switch args[0] {
	case "list":
		return cmdDLQList(ctx, a, args[1:])
	case "redrive":
		return cmdDLQRedrive(ctx, a, args[1:])
	}
	fmt.Fprintf(a.stderr, "pgtrail: dlq: unknown subcommand %q\n\n%s", args[0], dlqUsage)
	return exitError(exitUsage)
}

// dlqSQS is what pgtrail dlq asks of SQS.
type dlqSQS interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	StartMessageMoveTask(ctx context.Context, in *sqs.StartMessageMoveTaskInput, opts ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
	ListMessageMoveTasks(ctx context.Context, in *sqs.ListMessageMoveTasksInput, opts ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error)
	CancelMessageMoveTask(ctx context.Context, in *sqs.CancelMessageMoveTaskInput, opts ...func(*sqs.Options)) (*sqs.CancelMessageMoveTaskOutput, error)
}

// moveTaskPoll is how often redrive asks for a move task's progress.
var moveTaskPoll = 2 * time.Second

// dlqQueues are the queue and its dead-letter queue.
type dlqQueues struct {
	client            dlqSQS
	sourceURL, dlqURL string
	sourceARN, dlqARN string
	visible, inFlight int64 // the dead-letter queue's, at start
	maxReceiveCount   int
}

// openDLQ finds the queues: SQS_QUEUE_URL and its dead-letter queue (or
// dlqURL when given).
func openDLQ(ctx context.Context, a *app, dlqURL string, timeout time.Duration) (*dlqQueues, error) {
	if a.cfg.QueueURL == "" {
		fmt.Fprintln(a.stderr, "pgtrail: config: SQS_QUEUE_URL: required by dlq (the queue whose dead-letter queue it is)")
		return nil, exitError(exitUsage)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	client := sqs.NewFromConfig(awsCfg)
	q := &dlqQueues{client: client, sourceURL: a.cfg.QueueURL, dlqURL: dlqURL}
	src := &queueStatus{URL: a.cfg.QueueURL}
	readQueue(ctx, client, src, timeout)
	if src.Err != nil {
		return nil, fmt.Errorf("SQS_QUEUE_URL: %w", src.Err)
	}
	q.maxReceiveCount = src.MaxReceiveCount
	if q.dlqURL == "" {
		if src.DLQARN == "" {
			fmt.Fprintf(a.stderr, "pgtrail: dlq: the queue %s has no redrive policy, so no dead-letter queue; name one with -dlq URL\n", a.cfg.QueueURL)
			return nil, exitError(exitUsage)
		}
		name, account, err := parseQueueARN(src.DLQARN)
		if err != nil {
			return nil, err
		}
		in := &sqs.GetQueueUrlInput{QueueName: aws.String(name)}
		if account != "" {
			in.QueueOwnerAWSAccountId = aws.String(account)
		}
		tctx, cancel := context.WithTimeout(ctx, timeout)
		out, err := client.GetQueueUrl(tctx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("sqs: get url of the dead-letter queue %s: %w", src.DLQARN, err)
		}
		q.dlqURL = aws.ToString(out.QueueUrl)
		q.dlqARN = src.DLQARN
	}
	d := &queueStatus{URL: q.dlqURL}
	readQueue(ctx, client, d, timeout)
	if d.Err != nil {
		return nil, d.Err
	}
	q.visible, q.inFlight = d.Visible, d.InFlight
	return q, nil
}

// dlqFlags are a dlq subcommand's flags, with the two they share.
type dlqFlags struct {
	a       *app
	fs      *flag.FlagSet
	dlqURL  *string
	timeout *time.Duration
}

// newDLQFlags starts the flag set of the subcommand name; usage heads its
// help, timeoutUse says what the timeout bounds.
func newDLQFlags(a *app, name, timeoutUse, usage string) *dlqFlags {
	fs := flag.NewFlagSet("dlq "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	f := &dlqFlags{a: a, fs: fs,
		dlqURL:  fs.String("dlq", "", "the dead-letter queue's URL (default: the one the redrive policy of SQS_QUEUE_URL names)"),
		timeout: fs.Duration("timeout", 10*time.Second, timeoutUse),
	}
	fs.Usage = func() {
		fmt.Fprint(a.stderr, usage)
		fs.PrintDefaults()
	}
	return f
}

// open parses args, which valid checks beyond the flags' own types, and
// finds the queues.
func (f *dlqFlags) open(ctx context.Context, args []string, valid func() bool) (*dlqQueues, error) {
	if err := parseFlags(f.fs, args); err != nil {
		return nil, err
	}
	if f.fs.NArg() > 0 || !valid() {
		f.fs.Usage()
		return nil, exitError(exitUsage)
	}
	return openDLQ(ctx, f.a, *f.dlqURL, *f.timeout)
}

// arns fills the queues' ARNs, which StartMessageMoveTask takes.
func (q *dlqQueues) arns(ctx context.Context) error {
	for _, p := range []struct{ url, arn *string }{{&q.sourceURL, &q.sourceARN}, {&q.dlqURL, &q.dlqARN}} {
		if *p.arn != "" {
			continue
		}
		out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: p.url,
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
		if err != nil {
			return fmt.Errorf("sqs: get the ARN of %s: %w", *p.url, err)
		}
		*p.arn = out.Attributes[string(types.QueueAttributeNameQueueArn)]
	}
	return nil
}

// listVisibility is how long pgtrail dlq list hides the messages it has
// received, so that the next receive returns others; it then makes them
// visible again at once. Were they received with a visibility timeout of 0
// instead, every receive could return the same ten messages again, and a
// list of more than ten could not be had. If pgtrail is stopped before it
// has made them visible again, they reappear when this expires.
const listVisibility = 60 * time.Second

// cmdDLQList prints the messages of the dead-letter queue and, for every
// object they name, what pgtrail recorded of it. It does not consume them.
func cmdDLQList(ctx context.Context, a *app, args []string) error {
	f := newDLQFlags(a, "list", "time allowed to each request to SQS and the database",
		"usage: pgtrail dlq list [-n N] [-dlq URL]\n\nShows the messages in the dead-letter queue, the objects each names and the last error\n"+
			"pgtrail recorded for each object (cloudtrail_failures), or that the object was stored since.\n"+
			"The messages stay in the queue: they are received, hidden for at most 60s while the list\n"+
			"is read, and made visible again at once.\n\n")
	n := f.fs.Int("n", 10, "show at most N messages")
	q, err := f.open(ctx, args, func() bool { return *n >= 1 })
	if err != nil {
		return err
	}
	timeout := f.timeout
	msgs, err := q.peek(ctx, *n, *timeout)
	if err != nil {
		return err
	}

	var objs []sink.ObjectKey
	parsed := make([]parsedMessage, len(msgs))
	for i, m := range msgs {
		parsed[i] = parseMessage(m)
		for _, o := range parsed[i].notification.Objects {
			objs = append(objs, sink.ObjectKey{Bucket: o.Bucket, Key: o.Key})
		}
	}
	var (
		known map[sink.ObjectKey]sink.Failure
		dbErr error
	)
	if len(objs) > 0 {
		known, dbErr = sink.ReadFailures(ctx, a.cfg.DatabaseURL, objs, *timeout)
	}

	w := a.stdout
	fmt.Fprintf(w, "dead-letter queue %s: ~%d messages (%d in flight)\n", q.dlqURL, q.visible, q.inFlight)
	if len(msgs) == 0 {
		fmt.Fprintln(w, "no messages")
	}
	for i, m := range parsed {
		fmt.Fprintf(w, "\n%d. message %s", i+1, m.id)
		if !m.sent.IsZero() {
			fmt.Fprintf(w, ", sent %s", m.sent.UTC().Format(time.DateTime))
		}
		fmt.Fprintln(w)
		if m.err != nil {
			fmt.Fprintf(w, "   not a notification pgtrail understands: %v\n   body: %s\n", m.err, quoteBody(m.body))
			continue
		}
		if len(m.notification.Objects) == 0 {
			fmt.Fprintf(w, "   a %s notification that names no object\n", m.notification.Kind)
			continue
		}
		for _, o := range m.notification.Objects {
			fmt.Fprintf(w, "   s3://%s/%s\n", o.Bucket, o.Key)
			f, ok := known[sink.ObjectKey{Bucket: o.Bucket, Key: o.Key}]
			switch {
			case dbErr != nil:
				fmt.Fprintln(w, "     (the database could not be read)")
			case !ok:
			case f.Error != "":
				kind := "transient"
				if f.Permanent {
					kind = "permanent"
				}
				fmt.Fprintf(w, "     failed %d× (%s), last %s: %s\n", f.Failures, kind, f.FailedAt.UTC().Format(time.DateTime), f.Error)
			default:
				fmt.Fprintln(w, "     no failure recorded")
			}
			if ok && f.Committed {
				fmt.Fprintln(w, "     stored since: the ledger has it")
			}
		}
	}
	if int64(len(msgs)) < q.visible {
		fmt.Fprintf(w, "\nshowing %d of ~%d (-n)\n", len(msgs), q.visible)
	}
	if dbErr != nil {
		fmt.Fprintln(a.stderr, "pgtrail: dlq list: the recorded errors could not be read:", oneLine(dbErr.Error()))
		return exitError(exitFailure)
	}
	return nil
}

// parsedMessage is one dead-letter message as pgtrail reads it.
type parsedMessage struct {
	id, body     string
	sent         time.Time
	notification worker.Notification
	err          error
}

func parseMessage(m types.Message) parsedMessage {
	p := parsedMessage{id: aws.ToString(m.MessageId), body: aws.ToString(m.Body)}
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		p.sent = time.UnixMilli(ms)
	}
	p.notification, p.err = worker.ParseNotification([]byte(p.body))
	return p
}

// quoteBody is the start of a message body, quoted.
func quoteBody(s string) string {
	const most = 200
	if len(s) > most {
		return strconv.Quote(s[:most]) + "…"
	}
	return strconv.Quote(s)
}

// peek receives up to n distinct messages of the dead-letter queue and
// makes each visible again before it returns.
func (q *dlqQueues) peek(ctx context.Context, n int, timeout time.Duration) (msgs []types.Message, err error) {
	seen := map[string]bool{}
	defer func() {
		// Even when interrupted: the messages must not stay hidden.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		for _, m := range msgs {
			if _, cerr := q.client.ChangeMessageVisibility(rctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(q.dlqURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
			}); cerr != nil && err == nil {
				err = fmt.Errorf("sqs: make message %s visible again (it will be in %s): %w", aws.ToString(m.MessageId), listVisibility, cerr)
			}
		}
	}()
	for len(msgs) < n {
		rctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
		out, rerr := q.client.ReceiveMessage(rctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(q.dlqURL),
			MaxNumberOfMessages: int32(min(10, n-len(msgs))),
			WaitTimeSeconds:     1,
			VisibilityTimeout:   int32(listVisibility / time.Second),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{
				types.MessageSystemAttributeNameSentTimestamp,
			},
		})
		cancel()
		if rerr != nil {
			return msgs, fmt.Errorf("sqs: receive from the dead-letter queue %s: %w", q.dlqURL, rerr)
		}
		fresh := 0
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			msgs = append(msgs, m)
		}
		if fresh == 0 {
			break
		}
	}
	return msgs, nil
}

// cmdDLQRedrive moves the dead-letter queue's messages back to the queue.
func cmdDLQRedrive(ctx context.Context, a *app, args []string) error {
	f := newDLQFlags(a, "redrive", "time allowed to each request to SQS",
		"usage: pgtrail dlq redrive [-max-per-second N] [-dlq URL]\n\n"+
			"Moves the messages of the dead-letter queue back to SQS_QUEUE_URL, once the cause of their\n"+
			"failure is fixed, and reports its progress. It asks SQS to move them (StartMessageMoveTask);\n"+
			"where SQS cannot (a queue that is not a dead-letter queue, an emulator), it receives each\n"+
			"message, sends it to the queue and deletes it, sending each message once.\n\n")
	rate := f.fs.Int("max-per-second", 0, "move at most N messages a second (0: as fast as SQS allows)")
	q, err := f.open(ctx, args, func() bool { return *rate >= 0 && *rate <= 500 })
	if err != nil {
		return err
	}
	timeout := f.timeout
	fmt.Fprintf(a.stdout, "moving ~%d messages from %s to %s\n", q.visible, q.dlqURL, q.sourceURL)

	moved, err := q.moveTask(ctx, a.stdout, *rate, *timeout)
	var unsupported errMoveTaskUnavailable
	if errors.As(err, &unsupported) {
		fmt.Fprintf(a.stdout, "SQS cannot move them itself (%v); moving them one by one\n", unsupported.err)
		moved, err = q.moveByHand(ctx, a.stdout, *rate, *timeout)
	}
	fmt.Fprintf(a.stdout, "moved %d messages\n", moved)
	return err
}

// errMoveTaskUnavailable says that StartMessageMoveTask was refused.
type errMoveTaskUnavailable struct{ err error }

func (e errMoveTaskUnavailable) Error() string { return e.err.Error() }

// moveTask has SQS move the messages and reports the task's progress until
// it ends.
func (q *dlqQueues) moveTask(ctx context.Context, w io.Writer, rate int, timeout time.Duration) (int64, error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := q.arns(tctx); err != nil {
		return 0, err
	}
	in := &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(q.dlqARN), DestinationArn: aws.String(q.sourceARN)}
	if rate > 0 {
		in.MaxNumberOfMessagesPerSecond = aws.Int32(int32(rate))
	}
	out, err := q.client.StartMessageMoveTask(tctx, in)
	if err != nil {
		// Refused (not a dead-letter queue, no permission for the
		// task, a region or emulator without it), as against unreachable.
		var (
			ae smithy.APIError
			re *awshttp.ResponseError
		)
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &ae):
			return 0, errMoveTaskUnavailable{fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())}
		case errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500:
			return 0, errMoveTaskUnavailable{fmt.Errorf("HTTP %d", re.HTTPStatusCode())}
		}
		return 0, fmt.Errorf("sqs: start message move task: %w", err)
	}
	handle := aws.ToString(out.TaskHandle)
	var moved int64
	tick := time.NewTicker(moveTaskPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			_, cerr := q.client.CancelMessageMoveTask(cctx, &sqs.CancelMessageMoveTaskInput{TaskHandle: aws.String(handle)})
			cancel()
			if cerr != nil {
				fmt.Fprintf(w, "interrupted; the move task goes on in SQS (cancel it: %v)\n", cerr)
			} else {
				fmt.Fprintln(w, "interrupted; the move task is cancelled")
			}
			return moved, ctx.Err()
		case <-tick.C:
		}
		lctx, cancel := context.WithTimeout(ctx, timeout)
		lo, err := q.client.ListMessageMoveTasks(lctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(q.dlqARN), MaxResults: aws.Int32(1)})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return moved, fmt.Errorf("sqs: list message move tasks: %w", err)
		}
		if len(lo.Results) == 0 {
			continue
		}
		t := lo.Results[0]
		moved = t.ApproximateNumberOfMessagesMoved
		fmt.Fprintf(w, "moved %d of %d (%s)\n", moved, aws.ToInt64(t.ApproximateNumberOfMessagesToMove), aws.ToString(t.Status))
		switch aws.ToString(t.Status) {
		case "COMPLETED":
			return moved, nil
		case "FAILED", "CANCELLED":
			return moved, fmt.Errorf("sqs: the move task ended %s: %s", aws.ToString(t.Status), aws.ToString(t.FailureReason))
		}
	}
}

// redriveVisibility is how long moveByHand holds a message between its
// receive and its delete.
const redriveVisibility = 60 * time.Second

// moveByHand receives each message of the dead-letter queue, sends it to
// the queue and deletes it. A message is sent once: one received again
// after its send (its delete failed, or came too late) is only deleted.
func (q *dlqQueues) moveByHand(ctx context.Context, w io.Writer, rate int, timeout time.Duration) (int64, error) {
	sent := map[string]bool{}
	var (
		moved     int64
		lastShown time.Time
		start     = time.Now()
		fifo      = strings.HasSuffix(q.sourceURL, ".fifo")
	)
	for empty := 0; empty < 2; {
		rctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
		out, err := q.client.ReceiveMessage(rctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.dlqURL),
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             1,
			VisibilityTimeout:           int32(redriveVisibility / time.Second),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameMessageGroupId},
		})
		cancel()
		if err != nil {
			return moved, fmt.Errorf("sqs: receive from the dead-letter queue: %w", err)
		}
		if len(out.Messages) == 0 {
			empty++ // twice, for a message made visible meanwhile
			continue
		}
		empty = 0
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if !sent[id] {
				if rate > 0 {
					// Pace the sends: the (moved+1)th no earlier than moved/rate seconds in.
					if wait := time.Until(start.Add(time.Duration(moved) * time.Second / time.Duration(rate))); wait > 0 {
						select {
						case <-ctx.Done():
							return moved, ctx.Err()
						case <-time.After(wait):
						}
					}
				}
				in := &sqs.SendMessageInput{QueueUrl: aws.String(q.sourceURL), MessageBody: m.Body, MessageAttributes: m.MessageAttributes}
				if fifo {
					in.MessageGroupId = aws.String(m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)])
					in.MessageDeduplicationId = aws.String(id)
				}
				sctx, cancel := context.WithTimeout(ctx, timeout)
				_, err := q.client.SendMessage(sctx, in)
				cancel()
				if err != nil {
					return moved, fmt.Errorf("sqs: send message %s to %s: %w", id, q.sourceURL, err)
				}
				sent[id] = true
				moved++
			}
			dctx, cancel := context.WithTimeout(ctx, timeout)
			_, err := q.client.DeleteMessage(dctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.dlqURL), ReceiptHandle: m.ReceiptHandle})
			cancel()
			if err != nil && ctx.Err() != nil {
				return moved, ctx.Err()
			}
			// A failed delete leaves the message to be received again;
			// it is then only deleted.
			if time.Since(lastShown) >= time.Second {
				fmt.Fprintf(w, "moved %d of ~%d\n", moved, q.visible)
				lastShown = time.Now()
			}
		}
	}
	return moved, nil
}
