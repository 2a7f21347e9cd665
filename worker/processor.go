package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
)

// Processor takes objects from storage to the sink: fetch, decode,
// normalize, write. It is shared by the queue worker and by local ingest,
// and bounds the objects in progress across the whole process.
type Processor struct {
	s3      S3
	sink    Sink
	ledger  Ledger
	limits  cloudtrail.Limits
	allow   AllowList
	backoff retry.Backoff
	stall   time.Duration
	log     *zap.Logger
	metrics *Metrics
	// objects bounds the objects being fetched and decoded; queued bounds
	// the memory (entryMemory) of the decoded entries waiting for, or in, a
	// batch's transaction. An object gives its slot in objects back once
	// its entries are in the batcher, so that the next one is fetched while
	// the batch gathers and commits.
	objects *semaphore.Weighted
	queued  *semaphore.Weighted
	batches *batcher
	// decoders keeps Decoders, with their gzip readers and buffers, and
	// entryBufs the []cloudtrail.Entry an object is decoded into, for reuse.
	decoders  sync.Pool
	entryBufs sync.Pool
	// bodies keeps the buffers small objects are read into (fetchAndWrite);
	// chunks the memory their entries are carved from (cloudtrail's arena).
	bodies sync.Pool
	chunks cloudtrail.ChunkPool
	// digests checks digest files; nil skips them.
	digests *DigestVerifier
}

// SetDigestVerifier makes the processor check the digest files it is
// given with v, instead of skipping them. Call it before the first object.
func (p *Processor) SetDigestVerifier(v *DigestVerifier) { p.digests = v }

// commitDigest checks a digest file, with retries, or skips it when no
// DigestVerifier is set.
func (p *Processor) commitDigest(ctx context.Context, ref ObjectRef, log *zap.Logger) error {
	if p.digests == nil || cloudtrail.KindOfKey(ref.Key) != cloudtrail.KeyDigest {
		log.Debug("digest file skipped")
		p.metrics.objectDone("digest", sink.WriteResult{})
		return nil
	}
	err := p.backoff.Retry(ctx, func() error {
		_, err := p.digests.Verify(ctx, ref.Bucket, ref.Key)
		return err
	}, func(attempt int, err error) {
		log.Warn("digest check failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
	})
	if err != nil {
		p.metrics.objectDone("failed", sink.WriteResult{})
		return err
	}
	p.metrics.objectDone("digest", sink.WriteResult{})
	return nil
}

// NewProcessor returns a Processor. s3 and ledger may be nil for local
// ingest only.
func NewProcessor(cfg Config, s3c S3, sink Sink, ledger Ledger, m *Metrics, log *zap.Logger) *Processor {
	cfg.setDefaults()
	return &Processor{
		s3: s3c, sink: sink, ledger: ledger, limits: cfg.Limits, allow: cfg.Allow,
		backoff: cfg.Backoff, stall: cfg.StallTimeout, log: log, metrics: m,
		objects: semaphore.NewWeighted(int64(cfg.ObjectConcurrency)),
		queued:  semaphore.NewWeighted(maxQueuedBytes),
		// Two transactions at a time keep the database busy while the
		// next batch gathers; more only contend on a small server.
		batches: newBatcher(sink, min(2, cfg.ObjectConcurrency)),
	}
}

// CommitMessage commits every object that one message names, each looked
// up in the ledger first. Objects are independent: one failing does not
// stop the others, so that a redelivery has less to do. It returns a
// permanent error if any object failed permanently, else the first error.
func (p *Processor) CommitMessage(ctx context.Context, messageID string, refs []ObjectRef) error {
	return p.commitEach(ctx, messageID, refs, true)
}

// commitEach commits refs side by side, as CommitMessage does; lookup false
// skips the ledger look-up, for a message that SQS delivers for the first
// time.
func (p *Processor) commitEach(ctx context.Context, messageID string, refs []ObjectRef, lookup bool) error {
	if len(refs) == 1 {
		// CloudTrail names one object a notification: no goroutine.
		_, err := p.commitObject(ctx, messageID, refs[0], lookup)
		return err
	}
	var g errgroup.Group
	errs := make([]error, len(refs))
	for i, ref := range refs {
		g.Go(func() error {
			_, errs[i] = p.commitObject(ctx, messageID, ref, lookup)
			return nil
		})
	}
	_ = g.Wait()
	var first error
	for _, err := range errs {
		if retry.IsPermanent(err) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// slot is an object's place in Processor.objects. It is held while the
// object is fetched and decoded, given back once its entries are queued for a
// batch, and taken again if the object is retried. One goroutine owns it.
type slot struct {
	sem  *semaphore.Weighted
	held bool
}

func (s *slot) acquire(ctx context.Context) error {
	if s == nil || s.held {
		return nil
	}
	if err := s.sem.Acquire(ctx, 1); err != nil {
		return err
	}
	s.held = true
	return nil
}

func (s *slot) release() {
	if s != nil && s.held {
		s.sem.Release(1)
		s.held = false
	}
}

// CommitObject commits one S3 object, as a message's objects are: same
// allow-list, caps, rejects, retries and object concurrency. It is for
// sources other than the queue, such as a backfill, which looks objects up
// in the ledger itself; CommitObject does not. A digest file is checked
// (SetDigestVerifier), or skipped.
func (p *Processor) CommitObject(ctx context.Context, ref ObjectRef) (sink.WriteResult, error) {
	return p.commitObject(ctx, "", ref, false)
}

// commitObject commits one S3 object, retrying transient failures.
func (p *Processor) commitObject(ctx context.Context, messageID string, ref ObjectRef, lookup bool) (_ sink.WriteResult, err error) {
	p.metrics.objectStarted()
	defer p.metrics.objectFinished()
	log := quietOnRedelivery(ctx, p.log).With(zap.String(keyMessageID, messageID), zap.String(keyBucket, ref.Bucket), zap.String(keyKey, ref.Key))
	defer func() { p.recordFailure(ctx, messageID, ref, err, log) }()
	if err := p.allow.Check(ref.Bucket, ref.Key); err != nil {
		err = fmt.Errorf("s3://%s/%s: %w", ref.Bucket, ref.Key, err)
		log.Error("object refused", zap.Error(err))
		return sink.WriteResult{}, err
	}
	if cloudtrail.IsDigestKey(ref.Key) {
		// Digest files prove integrity; they hold no events.
		return sink.WriteResult{}, p.commitDigest(ctx, ref, log)
	}
	s := &slot{sem: p.objects}
	defer s.release()
	if err := s.acquire(ctx); err != nil {
		return sink.WriteResult{}, err
	}
	if lookup && p.ledger != nil {
		done, err := p.ledger.Processed(ctx, ref.Bucket, ref.Key)
		if err == nil && done {
			log.Info("object already committed; skipped")
			p.metrics.objectDone("already_processed", sink.WriteResult{})
			return sink.WriteResult{}, nil
		}
	}
	var res sink.WriteResult
	err = p.backoff.Retry(ctx, func() error {
		if err := s.acquire(ctx); err != nil {
			return err
		}
		var err error
		res, err = p.fetchAndWrite(ctx, messageID, ref, s)
		return err
	}, func(attempt int, err error) {
		log.Warn("object failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
	})
	if err != nil {
		if retry.IsPermanent(err) {
			p.metrics.objectDone("failed", sink.WriteResult{})
			// Name every object that fails, not only the first one that
			// the message's own error reports.
			log.Error("object refused", zap.Error(err))
		}
		return sink.WriteResult{}, err
	}
	p.metrics.objectDone("ok", res)
	log.Debug("object committed", zap.Int("events", res.Events), zap.Int("inserted", res.Inserted),
		zap.Int("duplicates", res.Duplicates), zap.Int("rejected", res.Rejected))
	return res, nil
}

// fetchAndWrite fetches, decodes and commits one object; s is the object's
// slot, held on entry.
func (p *Processor) fetchAndWrite(ctx context.Context, messageID string, ref ObjectRef, s *slot) (sink.WriteResult, error) {
	start := time.Now()
	// The SDK sets no read timeout for S3: a connection that goes silent
	// would hold the object, and its message, for good. The watchdog
	// cancels the request, body included, when S3 sends nothing for the
	// stall timeout; the sink keeps ctx.
	getCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watch := newStallWatch(p.stall, func() { cancel(fmt.Errorf("%w for %s", errStalled, p.stall)) })
	defer watch.stop()
	watch.start()
	out, err := p.s3.GetObject(getCtx, &s3.GetObjectInput{Bucket: aws.String(ref.Bucket), Key: aws.String(ref.Key)})
	watch.stop()
	if err != nil {
		if cause := context.Cause(getCtx); errors.Is(cause, errStalled) {
			err = cause
		}
		return sink.WriteResult{}, fmt.Errorf("s3: get s3://%s/%s: %w", ref.Bucket, ref.Key, classifyS3(err))
	}
	defer out.Body.Close()
	p.metrics.fetched(time.Since(start))
	body := &countingReader{r: out.Body, watch: watch}
	obj := &sink.Object{Bucket: ref.Bucket, Key: ref.Key, Size: aws.ToInt64(out.ContentLength), MessageID: messageID}
	r, release, err := p.readSmall(body, obj.Size)
	if err != nil {
		p.metrics.bytesFetched(body.n)
		if cause := context.Cause(getCtx); errors.Is(cause, errStalled) {
			err = cause
		}
		return sink.WriteResult{}, fmt.Errorf("s3: read s3://%s/%s: %w", ref.Bucket, ref.Key, err)
	}
	defer release()
	res, err := p.write(ctx, obj, r, s)
	p.metrics.bytesFetched(body.n)
	if err != nil && body.err != nil && !retry.IsPermanent(body.err) {
		// The body broke off mid-stream (connection reset, stall): that
		// is the storage's fault, not the object's, and worth a retry.
		readErr := body.err
		if cause := context.Cause(getCtx); errors.Is(cause, errStalled) {
			readErr = cause
		}
		return res, fmt.Errorf("s3: read s3://%s/%s: %w", ref.Bucket, ref.Key, readErr)
	}
	return res, err
}

// maxPrefetchBytes is the compressed size up to which an object is read
// whole into memory before it is decoded: about maxBufferedBytes once
// decompressed, at CloudTrail's compression ratios.
const maxPrefetchBytes = 1 << 20

// readSmall reads an object of size bytes whole from r, into a buffer from
// p.bodies, when it is small enough (maxPrefetchBytes): decoding then runs
// from memory to the end, without waiting on the network between two
// reads, and a connection goes back to its pool at once. A bigger object,
// or one of unknown size, is left to stream: r itself is returned. release
// gives the buffer back; call it once the object is written.
func (p *Processor) readSmall(r io.Reader, size int64) (_ io.Reader, release func(), _ error) {
	if size <= 0 || size > maxPrefetchBytes {
		return r, func() {}, nil
	}
	b, _ := p.bodies.Get().(*[]byte)
	if b == nil || int64(cap(*b)) < size {
		nb := make([]byte, 0, max(size, 64<<10))
		b = &nb
	}
	*b = (*b)[:size]
	if _, err := io.ReadFull(r, *b); err != nil {
		p.bodies.Put(b)
		return nil, nil, err
	}
	return bytes.NewReader(*b), func() { p.bodies.Put(b) }, nil
}

// write decodes r into obj's entries and commits them: batched with
// others when the object fits in memory, streamed alone when it does not.
// A small object's slot s (nil for none) is given back once its entries
// are queued for a batch.
func (p *Processor) write(ctx context.Context, obj *sink.Object, r io.Reader, s *slot) (sink.WriteResult, error) {
	dec, _ := p.decoders.Get().(*cloudtrail.Decoder)
	var err error
	if dec == nil {
		dec, err = cloudtrail.NewDecoder(r, p.limits)
	} else {
		err = dec.Reset(r)
	}
	if err != nil {
		return sink.WriteResult{}, retry.Permanent(fmt.Errorf("decode %s: %w", obj.Name(), err))
	}
	// The entries of an object decoded whole live in chunks of their own,
	// given back once its batch is committed (or failed): nothing reads
	// them after that.
	dec.Recycle(&p.chunks)
	// The decoder goes back to the pool as soon as the object is decoded:
	// entries copy what they keep.
	defer func() {
		if dec != nil {
			p.decoders.Put(dec)
		}
	}()

	// Decode ahead up to maxBufferedBytes of entries in memory: a whole
	// object is batched with others, a bigger one streamed alone.
	stream := &decodeStream{dec: dec, obj: obj}
	start := time.Now()
	var buf []cloudtrail.Entry
	if b, ok := p.entryBufs.Get().(*[]cloudtrail.Entry); ok {
		buf = *b
	}
	defer func() {
		clear(buf)
		buf = buf[:0]
		p.entryBufs.Put(&buf)
	}()
	var size int
	for size <= maxBufferedBytes {
		var e cloudtrail.Entry
		err := stream.Next(&e)
		if err == io.EOF {
			decoded := time.Since(start)
			obj.Read, _ = dec.LogRead()
			// The entries wait for their batch under the queue's budget,
			// not in the object's slot.
			n := int64(min(size, maxQueuedBytes))
			if err := p.queued.Acquire(ctx, n); err != nil {
				return sink.WriteResult{}, err
			}
			defer p.queued.Release(n)
			s.release()
			chunks := dec.TakeChunks()
			p.decoders.Put(dec)
			dec = nil
			res, err := p.batches.write(ctx, &sink.BufferedObject{Object: *obj, Entries: buf})
			p.chunks.Put(chunks)
			p.metrics.stages(decoded, time.Since(start)-decoded)
			return res, err
		}
		if err != nil {
			return sink.WriteResult{}, err
		}
		size += entryMemory(&e)
		if len(buf) == cap(buf) {
			// Grown by hand so as not to pass the entries the bound can
			// hold: the buffer is kept for the next object.
			buf = slices.Grow(buf, min(max(len(buf), 64), maxBufferedEntries-len(buf)))
		}
		buf = append(buf, e)
	}
	// Too big to batch: the object is streamed, and its entries are left to
	// the garbage collector as the sink is done with them.
	dec.Recycle(nil)
	stream.ahead = buf
	so := &sink.StreamedObject{Object: *obj, Entries: stream}
	stream.obj = &so.Object // the ledger row it writes once the stream ends
	res, err := p.sink.WriteStreamed(ctx, so)
	p.metrics.stages(stream.decodeTime, time.Since(start)-stream.decodeTime)
	if err != nil {
		return sink.WriteResult{}, err
	}
	return res, nil
}

// decodeStream is the sink.EntrySource of a streamed object: it decodes and
// normalizes one record per call, and turns a record that cannot be
// normalized into a Reject. Entries decoded ahead come first. At the end it
// sets obj.Read, for the ledger.
type decodeStream struct {
	dec        *cloudtrail.Decoder
	obj        *sink.Object
	ahead      []cloudtrail.Entry
	decodeTime time.Duration
}

func (r *decodeStream) Next(e *cloudtrail.Entry) error {
	if len(r.ahead) > 0 {
		*e = r.ahead[0]
		r.ahead[0] = cloudtrail.Entry{}
		r.ahead = r.ahead[1:]
		return nil
	}
	start := time.Now()
	err := r.dec.NextEntry(e, r.obj.Bucket, r.obj.Key)
	r.decodeTime += time.Since(start)
	if err == io.EOF {
		// The sink writes the object's ledger row after its last entry.
		r.obj.Read, _ = r.dec.LogRead()
		return io.EOF
	}
	if err != nil {
		return retry.Permanent(fmt.Errorf("decode %s: %w", r.obj.Name(), err))
	}
	return nil
}

// classifyS3 marks the S3 errors that will not go away by retrying.
func classifyS3(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidObjectState", "NotFound":
			return retry.Permanent(err)
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound, http.StatusForbidden:
			return retry.Permanent(err)
		}
	}
	return err
}

// countingReader counts bytes and remembers the first read error other
// than io.EOF. Each read runs under watch.
type countingReader struct {
	r     io.Reader
	watch *stallWatch
	n     int64
	err   error
}

func (c *countingReader) Read(b []byte) (int, error) {
	c.watch.start()
	n, err := c.r.Read(b)
	c.watch.stop()
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// errStalled is the cause of a GetObject cancelled because S3 went silent.
var errStalled = errors.New("no data from S3")

// stallWatch calls fire when it has been started and not stopped for d.
// A nil *stallWatch (d ≤ 0) never fires.
type stallWatch struct {
	d time.Duration
	t *time.Timer
}

func newStallWatch(d time.Duration, fire func()) *stallWatch {
	if d <= 0 {
		return nil
	}
	t := time.AfterFunc(time.Hour, fire)
	t.Stop()
	return &stallWatch{d: d, t: t}
}

func (w *stallWatch) start() {
	if w != nil {
		w.t.Reset(w.d)
	}
}

func (w *stallWatch) stop() {
	if w != nil {
		w.t.Stop()
	}
}
