package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Deleting finished messages. One DeleteMessage call per message cost more
// CPU in the SDK's middleware than GetObject did; DeleteMessageBatch removes
// up to ten messages for the price of one call.
//
// Batching must not make a message wait for company, so the deleter has no
// goroutine and no timer, like batcher: a handler that finds no call in
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

// deleter deletes messages from one queue in batches. A caller that finds
// no call in progress, or a full batch waiting and fewer than
// maxDeleteCalls calls in progress, becomes a sender (the leader): it sends
// batches from the head of the queue until its own handle is deleted or
// failed, then hands its place to the next waiting caller. Handles are
// taken in arrival order, so every caller is served.
type deleter struct {
	sqs      SQS
	queueURL string

	mu      sync.Mutex
	queue   []*deleteItem
	senders int
}

type deleteItem struct {
	handle string
	err    error
	// Guarded by deleter.mu.
	done    bool
	leading bool
	// wake is signalled (never blocking, capacity 1) when the item is done
	// or when it is handed the sender's place.
	wake chan struct{}
}

// wakeUp signals the item's owner without blocking. (batcher's signal does
// the same; the deleter keeps its own so that the two can change apart.)
func (it *deleteItem) wakeUp() {
	select {
	case it.wake <- struct{}{}:
	default:
	}
}

// delete deletes the message of receipt handle h and returns once the call
// that carried it has answered. ctx bounds the calls this caller sends for
// others as well as for itself; every caller's context is detached from the
// run's cancellation, so none cuts short another's delete at shutdown.
func (d *deleter) delete(ctx context.Context, h string) error {
	it := &deleteItem{handle: h, wake: make(chan struct{}, 1)}
	d.mu.Lock()
	d.queue = append(d.queue, it)
	if d.senders == 0 || (len(d.queue) >= maxDeleteBatch && d.senders < maxDeleteCalls) {
		d.senders++
		it.leading = true
	}
	for !it.done && !it.leading {
		d.mu.Unlock()
		<-it.wake
		d.mu.Lock()
	}
	d.mu.Unlock()
	if it.leading {
		d.lead(ctx, it)
	}
	return it.err
}

// lead sends batches until own is done, then passes the sender's place on.
func (d *deleter) lead(ctx context.Context, own *deleteItem) {
	d.mu.Lock()
	for !own.done {
		batch := d.take()
		if len(batch) == 0 {
			// own is in a batch another sender is sending.
			d.mu.Unlock()
			<-own.wake
			d.mu.Lock()
			continue
		}
		d.mu.Unlock()
		d.send(ctx, batch)
		d.mu.Lock()
	}
	own.leading = false
	for _, it := range d.queue {
		if !it.leading {
			it.leading = true
			it.wakeUp()
			d.mu.Unlock()
			return
		}
	}
	d.senders--
	d.mu.Unlock()
}

// take removes up to maxDeleteBatch items from the head of the queue.
// d.mu is held.
func (d *deleter) take() []*deleteItem {
	n := min(len(d.queue), maxDeleteBatch)
	batch := slices.Clone(d.queue[:n])
	clear(d.queue[:n]) // the queue's array must not keep them alive
	d.queue = d.queue[n:]
	return batch
}

// errNotAnswered is a batch entry SQS named neither as deleted nor as
// failed; it is retried.
var errNotAnswered = errors.New("sqs answered nothing for the entry")

// send deletes batch in one call and tells each item its own result.
func (d *deleter) send(ctx context.Context, batch []*deleteItem) {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(batch))
	for i, it := range batch {
		// Ids need only be unique within the call.
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(it.handle)}
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
	d.mu.Lock()
	for i, it := range batch {
		it.err = errs[i]
		it.done = true
		it.wakeUp()
	}
	d.mu.Unlock()
}

// entryError is the error of a failed entry: permanent when SQS blames the
// request (an invalid or expired receipt handle), which the same request
// would meet again.
func entryError(f types.BatchResultErrorEntry) error {
	err := fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
	if f.SenderFault {
		return Permanent(err)
	}
	return err
}
