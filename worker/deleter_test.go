package worker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/retry"
)

// heldSQS passes every call to the emulator's client, records the receipt
// handles of each DeleteMessageBatch call, and holds the first such call
// until release is closed.
type heldSQS struct {
	SQS
	entered chan struct{} // closed when the first call is held
	release chan struct{}

	mu    sync.Mutex
	calls [][]string
}

func newHeldSQS(q SQS) *heldSQS {
	return &heldSQS{SQS: q, entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	var handles []string
	for _, e := range in.Entries {
		handles = append(handles, aws.ToString(e.ReceiptHandle))
	}
	h.mu.Lock()
	h.calls = append(h.calls, handles)
	first := len(h.calls) == 1
	h.mu.Unlock()
	if first {
		close(h.entered)
		<-h.release
	}
	return h.SQS.DeleteMessageBatch(ctx, in, opts...)
}

// sizes returns the number of entries of each call so far.
func (h *heldSQS) sizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n []int
	for _, c := range h.calls {
		n = append(n, len(c))
	}
	return n
}

// deleterWorld is a queue holding n received (in-flight) messages and a
// deleter in front of it whose first call is held.
type deleterWorld struct {
	t        *testing.T
	ctx      context.Context
	aws      *localaws.Stack
	queueURL string
	handles  []string
	sqs      *heldSQS
	d        *deleter
}

func newDeleterWorld(t *testing.T, n int) *deleterWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := localaws.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := s.CreateQueue(ctx, localaws.UniqueName("deletes"), 300, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.SQS().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	w := &deleterWorld{t: t, ctx: ctx, aws: s, queueURL: q}
	for len(w.handles) < n {
		out, err := s.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			w.handles = append(w.handles, aws.ToString(m.ReceiptHandle))
		}
	}
	w.sqs = newHeldSQS(s.SQS())
	w.d = newDeleter(w.sqs, q)
	return w
}

// deleteAsync deletes h on a goroutine of its own; the result comes on the
// channel.
func (w *deleterWorld) deleteAsync(h string) <-chan error {
	res := make(chan error, 1)
	go func() { res <- w.d.delete(w.ctx, h) }()
	return res
}

// holdFirst starts deleting h and returns once its call is held.
func (w *deleterWorld) holdFirst(h string) <-chan error {
	w.t.Helper()
	res := w.deleteAsync(h)
	select {
	case <-w.sqs.entered:
	case <-w.ctx.Done():
		w.t.Fatal("the first delete never reached DeleteMessageBatch")
	}
	return res
}

// waitQueued waits until n handles wait for a call.
func (w *deleterWorld) waitQueued(n int) {
	w.t.Helper()
	for {
		w.d.l.mu.Lock()
		queued := len(w.d.l.queue)
		w.d.l.mu.Unlock()
		if queued == n {
			return
		}
		if w.ctx.Err() != nil {
			w.t.Fatalf("%d handles queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *deleterWorld) result(res <-chan error) error {
	w.t.Helper()
	select {
	case err := <-res:
		return err
	case <-w.ctx.Done():
		w.t.Fatal("a delete never returned")
		return nil
	}
}

func (w *deleterWorld) wantDepth(visible, inFlight int) {
	w.t.Helper()
	v, f, err := w.aws.QueueDepth(w.ctx, w.queueURL)
	if err != nil {
		w.t.Fatal(err)
	}
	if v != visible || f != inFlight {
		w.t.Errorf("queue holds %d visible and %d in-flight messages; want %d and %d", v, f, visible, inFlight)
	}
}

// TestDeleterBatches checks that a delete with no call in progress is sent
// at once, that a full batch does not wait for the call in progress, and
// that the deletes queued behind a call go together in the next one.
func TestDeleterBatches(t *testing.T) {
	t.Parallel()
	w := newDeleterWorld(t, 1+maxDeleteBatch+5)
	first := w.holdFirst(w.handles[0])

	// Ten more while the first call is held: the tenth starts a call of
	// its own, which deletes all ten.
	var full []<-chan error
	for _, h := range w.handles[1 : 1+maxDeleteBatch] {
		full = append(full, w.deleteAsync(h))
	}
	for i, res := range full {
		if err := w.result(res); err != nil {
			t.Errorf("delete %d of the full batch: %v", i, err)
		}
	}

	// Five more wait for the held call to end, then go in one call.
	var rest []<-chan error
	for _, h := range w.handles[1+maxDeleteBatch:] {
		rest = append(rest, w.deleteAsync(h))
	}
	w.waitQueued(len(rest))
	close(w.sqs.release)
	if err := w.result(first); err != nil {
		t.Errorf("first delete: %v", err)
	}
	for i, res := range rest {
		if err := w.result(res); err != nil {
			t.Errorf("delete %d of the last batch: %v", i, err)
		}
	}
	if got, want := w.sqs.sizes(), []int{1, maxDeleteBatch, 5}; !slices.Equal(got, want) {
		t.Errorf("DeleteMessageBatch calls of %v entries, want %v", got, want)
	}
	w.wantDepth(0, 0)
	w.d.l.mu.Lock()
	senders, queued := w.d.l.leading, len(w.d.l.queue)
	w.d.l.mu.Unlock()
	if senders != 0 || queued != 0 {
		t.Errorf("deleter left with %d senders and %d queued", senders, queued)
	}
}

// TestDeleterFailedEntry checks that an entry SQS refuses fails its own
// delete, permanently, while the other entries of its call are deleted.
func TestDeleterFailedEntry(t *testing.T) {
	t.Parallel()
	w := newDeleterWorld(t, 5)
	first := w.holdFirst(w.handles[0])
	const bad = 2
	var rest []<-chan error
	for i, h := range w.handles[1:] {
		if 1+i == bad {
			h = "invalid-" + h
		}
		rest = append(rest, w.deleteAsync(h))
	}
	w.waitQueued(len(rest))
	close(w.sqs.release)
	if err := w.result(first); err != nil {
		t.Errorf("first delete: %v", err)
	}
	for i, res := range rest {
		err := w.result(res)
		switch {
		case 1+i == bad && err == nil:
			t.Errorf("delete with an invalid receipt handle succeeded")
		case 1+i == bad && !retry.IsPermanent(err):
			t.Errorf("delete with an invalid receipt handle: %v; want a permanent error, not retried", err)
		case 1+i != bad && err != nil:
			t.Errorf("delete %d, batched with an invalid one: %v", 1+i, err)
		}
	}
	if got, want := w.sqs.sizes(), []int{1, 4}; !slices.Equal(got, want) {
		t.Errorf("DeleteMessageBatch calls of %v entries, want %v", got, want)
	}
	// The message of the invalid handle is still in flight.
	w.wantDepth(0, 1)
}

// TestEntryError checks how failed entries are classified.
func TestEntryError(t *testing.T) {
	sender := entryError(types.BatchResultErrorEntry{Id: aws.String("0"), Code: aws.String("ReceiptHandleIsInvalid"), Message: aws.String("bad"), SenderFault: true})
	if !retry.IsPermanent(sender) || sender.Error() != "ReceiptHandleIsInvalid: bad" {
		t.Errorf("sender fault: %v (permanent %t)", sender, retry.IsPermanent(sender))
	}
	server := entryError(types.BatchResultErrorEntry{Id: aws.String("1"), Code: aws.String("InternalError"), Message: aws.String("oops")})
	if retry.IsPermanent(server) {
		t.Errorf("server fault %v is permanent; want it retried", server)
	}
}
