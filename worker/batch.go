package worker

import (
	"context"
	"io"
	"sync"
)

// Batching. Most CloudTrail objects hold 50 to 200 records: one transaction
// each would spend more on round trips and commits than on rows. An object
// small enough is decoded whole into memory (BufferedRows) and queued; the
// objects queued together are written in one transaction of up to
// maxBatchRows rows. Each object's own ledger row is in that transaction,
// and its caller learns its own WriteResult only once the transaction is
// committed, so a message is still deleted only after its events are
// stored. An object too big to buffer is streamed alone.
const (
	// maxBufferedBytes is the decompressed size up to which an object is
	// decoded into memory and batched; a bigger one is streamed.
	maxBufferedBytes = 8 << 20
	// maxBatchRows caps the rows of one batch's transaction.
	maxBatchRows = 10_000
	// maxQueuedRows caps the rows decoded and not yet committed: queued
	// for a batch or in one being written. With the objects being decoded
	// (PGTRAIL_OBJECT_CONCURRENCY of them, up to maxBufferedBytes each) it
	// bounds the worker's memory.
	maxQueuedRows = maxBatchRows
)

// BufferedRows is a RowSource over rows decoded ahead of the write. A Sink
// may read Rows directly instead of calling Next.
type BufferedRows struct {
	Rows []Row
	i    int
}

// Next returns the next row, or io.EOF after the last.
func (b *BufferedRows) Next(row *Row) error {
	if b.i >= len(b.Rows) {
		return io.EOF
	}
	*row = b.Rows[b.i]
	b.i++
	return nil
}

// Rewind makes Next start again from the first row, for a sink that must
// read the rows a second time.
func (b *BufferedRows) Rewind() { b.i = 0 }

// batcher groups queued objects into transactions. It has no goroutine of
// its own: a caller that finds fewer than maxWriters writers at work
// becomes one (the leader), writes batches from the head of the queue until
// its own object is committed, then hands its place to the next waiting
// caller. Objects are taken in arrival order, so every caller is served.
type batcher struct {
	sink       Sink
	maxWriters int

	mu      sync.Mutex
	queue   []*batchItem
	writers int
}

type batchItem struct {
	obj  *Object
	rows int
	res  WriteResult
	err  error
	// Guarded by batcher.mu.
	done    bool
	leading bool
	// wake is signalled (never blocking, capacity 1) when the item is done
	// or when it is handed the writer's place.
	wake chan struct{}
}

func newBatcher(sink Sink, writers int) *batcher {
	return &batcher{sink: sink, maxWriters: max(writers, 1)}
}

// write queues obj, whose Rows are a *BufferedRows of n rows, and returns
// its result once the transaction that holds it is committed or failed.
func (b *batcher) write(ctx context.Context, obj *Object, n int) (WriteResult, error) {
	it := &batchItem{obj: obj, rows: n, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, it)
	if b.writers < b.maxWriters {
		b.writers++
		it.leading = true
	}
	for !it.done && !it.leading {
		b.mu.Unlock()
		<-it.wake
		b.mu.Lock()
	}
	b.mu.Unlock()
	if it.leading {
		b.lead(ctx, it)
	}
	return it.res, it.err
}

// lead writes batches until own is done, then passes the writer's place on.
func (b *batcher) lead(ctx context.Context, own *batchItem) {
	b.mu.Lock()
	for !own.done {
		batch := b.take()
		if len(batch) == 0 {
			// own is in a batch another leader is writing.
			b.mu.Unlock()
			<-own.wake
			b.mu.Lock()
			continue
		}
		b.mu.Unlock()
		b.commit(ctx, batch)
		b.mu.Lock()
	}
	own.leading = false
	for _, it := range b.queue {
		if !it.leading {
			it.leading = true
			signal(it.wake)
			b.mu.Unlock()
			return
		}
	}
	b.writers--
	b.mu.Unlock()
}

// take removes the next batch from the head of the queue. b.mu is held.
func (b *batcher) take() []*batchItem {
	n, rows := 0, 0
	for n < len(b.queue) && (n == 0 || rows+b.queue[n].rows <= maxBatchRows) {
		rows += b.queue[n].rows
		n++
	}
	batch := append([]*batchItem(nil), b.queue[:n]...)
	b.queue = b.queue[n:]
	return batch
}

// commit writes batch in one transaction. If a batch of several objects
// fails, each is tried alone, so that one object the database refuses does
// not fail the others.
func (b *batcher) commit(ctx context.Context, batch []*batchItem) {
	objs := make([]*Object, len(batch))
	for i, it := range batch {
		objs[i] = it.obj
	}
	res, err := b.sink.Write(ctx, objs)
	if err != nil && len(batch) > 1 && ctx.Err() == nil {
		for _, it := range batch {
			it.obj.Rows.(*BufferedRows).Rewind()
			r, err := b.sink.Write(ctx, []*Object{it.obj})
			b.finish(it, r, err)
		}
		return
	}
	for i, it := range batch {
		var r WriteResult
		if err == nil {
			r = res[i]
		}
		b.finish(it, []WriteResult{r}, err)
	}
}

func (b *batcher) finish(it *batchItem, res []WriteResult, err error) {
	b.mu.Lock()
	if err == nil && len(res) > 0 {
		it.res = res[0]
	}
	it.err = err
	it.done = true
	b.mu.Unlock()
	signal(it.wake)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
