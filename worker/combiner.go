package worker

import (
	"context"
	"slices"
	"sync"
)

// combiner is flat combining: it lets the callers of a batched operation
// do the batching themselves, with no goroutine and no timer. A caller that
// the policy (lead) lets combine runs batches from the head of the queue
// until its own item is done, then hands its place to the next waiting
// caller; the others wait for their item to be done. An idle operation so
// waits for nothing, a busy one gathers what arrives while a batch is under
// way, and items are taken in arrival order, so every caller is served. The
// batcher (writes) and the deleter (DeleteMessageBatch) are two. "Leading"
// below is a combining caller's turn, not an elected leader.
type combiner[T any] struct {
	// lead says whether a new caller should lead, given the items queued
	// (its own included) and the leaders at work.
	lead func(queued, leading int) bool
	// size is how many items from the head of queue make the next batch
	// (at least one).
	size func(queue []*queued[T]) int
	// run does one batch. It must call done for every item.
	run func(ctx context.Context, batch []*queued[T])

	mu      sync.Mutex
	queue   []*queued[T]
	leading int
}

// queued is one caller's item. The run function fills in v's results
// before it calls done; the caller reads them once do returns.
type queued[T any] struct {
	v T
	// Guarded by combiner.mu.
	done    bool
	leading bool
	// wake is signalled (never blocking, capacity 1) when the item is done
	// or when it is handed a leader's place.
	wake chan struct{}
}

// do queues v and returns once a batch holding it has run.
func (l *combiner[T]) do(ctx context.Context, v T) T {
	it := &queued[T]{v: v, wake: make(chan struct{}, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, it)
	if l.lead(len(l.queue), l.leading) {
		l.leading++
		it.leading = true
	}
	for !it.done && !it.leading {
		l.mu.Unlock()
		<-it.wake
		l.mu.Lock()
	}
	l.mu.Unlock()
	if it.leading {
		l.runUntil(ctx, it)
	}
	return it.v
}

// runUntil runs batches until own is done, then passes the leader's place on.
func (l *combiner[T]) runUntil(ctx context.Context, own *queued[T]) {
	l.mu.Lock()
	for !own.done {
		if len(l.queue) == 0 {
			// own is in a batch another leader is running.
			l.mu.Unlock()
			<-own.wake
			l.mu.Lock()
			continue
		}
		n := l.size(l.queue)
		batch := slices.Clone(l.queue[:n])
		clear(l.queue[:n]) // the queue's array must not keep them alive
		l.queue = l.queue[n:]
		l.mu.Unlock()
		l.run(ctx, batch)
		l.mu.Lock()
	}
	own.leading = false
	for _, it := range l.queue {
		if !it.leading {
			it.leading = true
			wake(it.wake)
			l.mu.Unlock()
			return
		}
	}
	l.leading--
	l.mu.Unlock()
}

// done marks it done and wakes its caller.
func (l *combiner[T]) done(it *queued[T]) {
	l.mu.Lock()
	it.done = true
	l.mu.Unlock()
	wake(it.wake)
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
