package worker

import (
	"context"
	"io"
	"unsafe"
)

// Batching. Most CloudTrail objects hold 50 to 200 records: one transaction
// each would spend more on round trips and commits than on rows. An object
// small enough is decoded whole into memory (BufferedRows) and queued; the
// objects queued together are written in one transaction of up to
// maxBatchRows rows. Each object's own ledger row is in that transaction,
// and its caller learns its own WriteResult only once the transaction is
// committed, so a message is still deleted only after its events are
// stored. An object too big to buffer is streamed alone.
//
// "Small enough" is measured by what the rows take in memory (rowMemory),
// not by the object's bytes: a row costs its text and some 700 bytes more
// whatever its size, so an object of many tiny records is bigger in memory
// than its bytes say, and is streamed.
const (
	// maxBufferedBytes is the memory (rowMemory) up to which an object's
	// rows are decoded ahead and batched; a bigger object is streamed.
	// It is about 5 MB of ordinary records, or 10,000 of the smallest.
	maxBufferedBytes = 8 << 20
	// maxBufferedRows is the most rows maxBufferedBytes can hold.
	maxBufferedRows = maxBufferedBytes/rowOverhead + 1
	// maxBatchRows caps the rows of one batch's transaction.
	maxBatchRows = 10_000
	// maxQueuedBytes caps the memory of the rows decoded and not yet
	// committed: queued for a batch or in one being written. With the
	// objects being decoded (PGTRAIL_OBJECT_CONCURRENCY of them, up to
	// maxBufferedBytes each) it bounds the worker's memory.
	maxQueuedBytes = 2 * maxBufferedBytes
)

// rowOverhead is what a buffered row costs beyond its text: the Row itself
// (an Event of 25 strings, mostly empty) and the sink's index of it in a
// batch (a pointer, its owner, its key in a set of the batch's events).
const rowOverhead = int(unsafe.Sizeof(Row{})) + 128

// rowMemory is what a decoded row keeps in memory until its batch is
// committed: rowOverhead and the text it holds.
func rowMemory(row *Row) int {
	if r := row.Reject; r != nil {
		return rowOverhead + int(unsafe.Sizeof(*r)) + len(r.Raw) + len(r.Reason)
	}
	e := &row.Event
	// The fields' text is a copy, unescaped, of part of the record's.
	return rowOverhead + len(e.Record) + len(e.EventID) + len(e.EventVersion) + len(e.EventSource) +
		len(e.EventName) + len(e.EventType) + len(e.EventCategory) + len(e.AWSRegion) +
		len(e.SourceIPAddress) + len(e.UserAgent) + len(e.UserIdentityType) + len(e.UserIdentityARN) +
		len(e.UserIdentityAccountID) + len(e.UserIdentityPrincipalID) + len(e.UserIdentityAccessKeyID) +
		len(e.UserIdentityUserName) + len(e.SessionIssuerARN) + len(e.InvokedBy) + len(e.ErrorCode) +
		len(e.ErrorMessage) + len(e.RequestID) + len(e.RecipientAccountID) + len(e.SharedEventID) +
		len(e.VPCEndpointID)
}

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

// batcher groups queued objects into transactions (see leaders): a caller
// that finds fewer than the maximum of writers at work becomes one, writes
// batches of up to maxBatchRows rows from the head of the queue until its
// own object is committed, then hands its place on.
type batcher struct {
	sink Sink
	l    leaders[batchItem]
}

type batchItem struct {
	obj  *Object
	rows int
	res  WriteResult
	err  error
}

func newBatcher(sink Sink, writers int) *batcher {
	writers = max(writers, 1)
	b := &batcher{sink: sink}
	b.l = leaders[batchItem]{
		lead: func(_, leading int) bool { return leading < writers },
		size: batchSize,
		run:  b.commit,
	}
	return b
}

// write queues obj, whose Rows are a *BufferedRows of n rows, and returns
// its result once the transaction that holds it is committed or failed.
func (b *batcher) write(ctx context.Context, obj *Object, n int) (WriteResult, error) {
	it := b.l.do(ctx, batchItem{obj: obj, rows: n})
	return it.res, it.err
}

// batchSize is how many objects from the head of the queue fit in one
// transaction: at least one, and no more than maxBatchRows rows.
func batchSize(queue []*queued[batchItem]) int {
	n, rows := 0, 0
	for n < len(queue) && (n == 0 || rows+queue[n].v.rows <= maxBatchRows) {
		rows += queue[n].v.rows
		n++
	}
	return n
}

// commit writes batch in one transaction. If a batch of several objects
// fails, each is tried alone, so that one object the database refuses does
// not fail the others.
func (b *batcher) commit(ctx context.Context, batch []*queued[batchItem]) {
	objs := make([]*Object, len(batch))
	for i, it := range batch {
		objs[i] = it.v.obj
	}
	res, err := b.sink.Write(ctx, objs)
	if err != nil && len(batch) > 1 && ctx.Err() == nil {
		for _, it := range batch {
			it.v.obj.Rows.(*BufferedRows).Rewind()
			r, err := b.sink.Write(ctx, []*Object{it.v.obj})
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

func (b *batcher) finish(it *queued[batchItem], res []WriteResult, err error) {
	if err == nil && len(res) > 0 {
		it.v.res = res[0]
	}
	it.v.err = err
	b.l.done(it)
}
