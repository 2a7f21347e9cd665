package worker

import (
	"context"
	"unsafe"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// Batching. Most CloudTrail objects hold 50 to 200 records: one transaction
// each would spend more on round trips and commits than on rows. An object
// small enough is decoded whole into memory (a sink.BufferedObject) and
// queued; the objects queued together are written in one transaction of up
// to maxBatchEntries entries. Each object's own ledger row is in that transaction,
// and its caller learns its own WriteResult only once the transaction is
// committed, so a message is still deleted only after its events are
// stored. An object too big to buffer is streamed alone.
//
// "Small enough" is measured by what the entries take in memory
// (entryMemory), not by the object's bytes: an entry costs its text and
// some 700 bytes more whatever its size, so an object of many tiny records
// is bigger in memory than its bytes say, and is streamed.
const (
	// maxBufferedBytes is the memory (entryMemory) up to which an object's
	// entries are decoded ahead and batched; a bigger object is streamed.
	// It is about 5 MB of ordinary records, or 10,000 of the smallest.
	maxBufferedBytes = 8 << 20
	// maxBufferedEntries is the most entries maxBufferedBytes can hold.
	maxBufferedEntries = maxBufferedBytes/entryOverhead + 1
	// maxBatchEntries caps the entries of one batch's transaction.
	maxBatchEntries = 10_000
	// maxQueuedBytes caps the memory of the entries decoded and not yet
	// committed: queued for a batch or in one being written. With the
	// objects being decoded (PGTRAIL_OBJECT_CONCURRENCY of them, up to
	// maxBufferedBytes each) it bounds the worker's memory.
	maxQueuedBytes = 2 * maxBufferedBytes
)

// entryOverhead is what a buffered entry costs beyond its text: the Entry
// itself (an Event of 25 strings, mostly empty) and the sink's index of it
// in a batch (a pointer, its owner, its key in a set of the batch's events).
const entryOverhead = int(unsafe.Sizeof(cloudtrail.Entry{})) + 128

// entryMemory is what a decoded entry keeps in memory until its batch is
// committed: entryOverhead, the text it holds, and where its record's
// top-level members lie.
func entryMemory(en *cloudtrail.Entry) int {
	if r := en.Reject; r != nil {
		return entryOverhead + int(unsafe.Sizeof(*r)) + len(r.Raw) + len(r.Reason)
	}
	e := &en.Event
	// The fields' text is a copy, unescaped, of part of the record's.
	return entryOverhead + len(e.Record) + len(e.EventID) + len(e.EventVersion) + len(e.EventSource) +
		len(e.EventName) + len(e.EventType) + len(e.EventCategory) + len(e.AWSRegion) +
		len(e.SourceIPAddress) + len(e.UserAgent) + len(e.UserIdentityType) + len(e.UserIdentityARN) +
		len(e.UserIdentityAccountID) + len(e.UserIdentityPrincipalID) + len(e.UserIdentityAccessKeyID) +
		len(e.UserIdentityUserName) + len(e.SessionIssuerARN) + len(e.InvokedBy) + len(e.ErrorCode) +
		len(e.ErrorMessage) + len(e.RequestID) + len(e.RecipientAccountID) + len(e.SharedEventID) +
		len(e.VPCEndpointID) + len(e.Layout.Members)*memberSize
}

const memberSize = int(unsafe.Sizeof(cloudtrail.Member{}))

// batcher groups queued objects into transactions (see combiner): a caller
// that finds fewer than the maximum of writers at work becomes one, writes
// batches of up to maxBatchEntries entries from the head of the queue until
// its own object is committed, then hands its place on.
type batcher struct {
	sink Sink
	c    combiner[batchItem]
}

type batchItem struct {
	obj     *sink.BufferedObject
	entries int
	res     sink.WriteResult
	err     error
}

func newBatcher(sink Sink, writers int) *batcher {
	writers = max(writers, 1)
	b := &batcher{sink: sink}
	b.c = combiner[batchItem]{
		lead: func(_, leading int) bool { return leading < writers },
		size: batchSize,
		run:  b.commit,
	}
	return b
}

// write queues obj and returns its result once the transaction that holds
// it is committed or failed.
func (b *batcher) write(ctx context.Context, obj *sink.BufferedObject) (sink.WriteResult, error) {
	it := b.c.do(ctx, batchItem{obj: obj, entries: len(obj.Entries)})
	return it.res, it.err
}

// batchSize is how many objects from the head of the queue fit in one
// transaction: at least one, and no more than maxBatchEntries entries.
func batchSize(queue []*queued[batchItem]) int {
	n, entries := 0, 0
	for n < len(queue) && (n == 0 || entries+queue[n].v.entries <= maxBatchEntries) {
		entries += queue[n].v.entries
		n++
	}
	return n
}

// commit writes batch in one transaction. If a batch of several objects
// fails, each is tried alone, so that one object the database refuses does
// not fail the others.
func (b *batcher) commit(ctx context.Context, batch []*queued[batchItem]) {
	objs := make([]*sink.BufferedObject, len(batch))
	for i, it := range batch {
		objs[i] = it.v.obj
	}
	res, err := b.sink.WriteBuffered(ctx, objs)
	if err != nil && len(batch) > 1 && ctx.Err() == nil {
		for _, it := range batch {
			r, err := b.sink.WriteBuffered(ctx, []*sink.BufferedObject{it.v.obj})
			b.finish(it, r, err)
		}
		return
	}
	for i, it := range batch {
		var r sink.WriteResult
		if err == nil {
			r = res[i]
		}
		b.finish(it, []sink.WriteResult{r}, err)
	}
}

func (b *batcher) finish(it *queued[batchItem], res []sink.WriteResult, err error) {
	if err == nil && len(res) > 0 {
		it.v.res = res[0]
	}
	it.v.err = err
	b.c.done(it)
}
