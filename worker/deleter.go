package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pgtrail/pgtrail/internal/retry"
)

// Deleting finished messages. One DeleteMessage call per message cost more
// CPU in the SDK's middleware than GetObject did; DeleteMessageBatch removes
// up to ten messages for the price of one call.
//
// Batching must not make a message wait for company, so the deleter has no
// goroutine and no timer (see combiner, as the batcher): a handler that finds no call in
// progress sends its own delete at once, alone; handlers that finish while a
// call is in progress queue their receipt handles, and the next call takes
// up to ten of them. An idle worker's deletes so wait for nothing, a busy
// worker's wait at most for the call in progress, and batches grow with the
// load. When a full batch is waiting, another call starts rather than wait,
// up to maxDeleteCalls at once. Since the handlers themselves make the
// calls, a delete made during the shutdown grace is sent like any other.
//
// Each handler learns its own message's result. A failed entry, or a call
// that failed as a whole, comes back to its handler as an error, which
// retries through Backoff.Retry and queues the handle again, to be batched
// with whatever waits then. An entry SQS refuses as the sender's fault (an
// invalid or expired receipt handle) comes back permanent and is not retried.
const (
	// maxDeleteBatch is SQS's limit of entries per DeleteMessageBatch.
	maxDeleteBatch = 10
	// maxDeleteCalls caps the DeleteMessageBatch calls in progress. With
	// the default 20 messages in flight, two full batches are the most
	// that can wait; the cap only matters for a larger MaxInFlight.
	maxDeleteCalls = 4
)

// deleter deletes messages from one queue in batches (see combiner): a
// caller that finds no call in progress, or a full batch waiting and fewer
// than maxDeleteCalls calls in progress, becomes a sender: it sends batches
// from the head of the queue until its own handle is deleted or failed,
// then hands its place on.
type deleter struct {
	sqs      SQS
	queueURL string
	l        combiner[deleteItem]
}

type deleteItem struct {
	handle string
	err    error
}

func newDeleter(q SQS, queueURL string) *deleter {
	d := &deleter{sqs: q, queueURL: queueURL}
	d.l = combiner[deleteItem]{
		lead: func(queued, sending int) bool {
			return sending == 0 || (queued >= maxDeleteBatch && sending < maxDeleteCalls)
		},
		size: func(queue []*queued[deleteItem]) int { return min(len(queue), maxDeleteBatch) },
		run:  d.send,
	}
	return d
}

// delete deletes the message of receipt handle h and returns once the call
// that carried it has answered. ctx bounds the calls this caller sends for
// others as well as for itself; every caller's context is detached from the
// run's cancellation, so none cuts short another's delete at shutdown.
func (d *deleter) delete(ctx context.Context, h string) error {
	return d.l.do(ctx, deleteItem{handle: h}).err
}

// errNotAnswered is a batch entry SQS named neither as deleted nor as
// failed; it is retried.
var errNotAnswered = errors.New("sqs answered nothing for the entry")

// send deletes batch in one call and tells each item its own result.
func (d *deleter) send(ctx context.Context, batch []*queued[deleteItem]) {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(batch))
	for i, it := range batch {
		// Ids need only be unique within the call.
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(it.v.handle)}
	}
	out, err := d.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(d.queueURL), Entries: entries})
	unanswered := err
	if err == nil {
		unanswered = errNotAnswered
	}
	errs := make([]error, len(batch))
	for i := range errs {
		errs[i] = unanswered
	}
	if err == nil {
		at := func(id *string) (int, bool) {
			i, err := strconv.Atoi(aws.ToString(id))
			return i, err == nil && i >= 0 && i < len(batch)
		}
		for _, s := range out.Successful {
			if i, ok := at(s.Id); ok {
				errs[i] = nil
			}
		}
		for _, f := range out.Failed {
			if i, ok := at(f.Id); ok {
				errs[i] = entryError(f)
			}
		}
	}
	for i, it := range batch {
		it.v.err = errs[i]
		d.l.done(it)
	}
}

// entryError is the error of a failed entry: permanent when SQS blames the
// request (an invalid or expired receipt handle), which the same request
// would meet again.
func entryError(f types.BatchResultErrorEntry) error {
	err := fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
	if f.SenderFault {
		return retry.Permanent(err)
	}
	return err
}
