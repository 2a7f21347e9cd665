package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Processor takes objects from storage to the sink: fetch, decode,
// normalize, write. It is shared by the queue worker and by local ingest,
// and bounds the objects in progress across the whole process.
type Processor struct {
	s3      S3
	sink    Sink
	ledger  Ledger
	limits  Limits
	allow   AllowList
	backoff Backoff
	stall   time.Duration
	log     *zap.Logger
	metrics *Metrics
	// objects bounds the objects being fetched and decoded; queued bounds
	// the memory (rowMemory) of the decoded rows waiting for, or in, a
	// batch's transaction. An object gives its slot in objects back once
	// its rows are in the batcher, so that the next one is fetched while
	// the batch gathers and commits.
	objects *semaphore.Weighted
	queued  *semaphore.Weighted
	batches *batcher
	// decoders keeps Decoders, with their gzip readers and buffers, and
	// rowBufs the []Row an object is decoded into, for reuse.
	decoders sync.Pool
	rowBufs  sync.Pool
	// bodies keeps the buffers small objects are read into (fetchAndWrite);
	// chunks the memory their rows are carved from (arena).
	bodies sync.Pool
	chunks chunkPool
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

// Objects commits every object of one message. Objects are independent: one
// failing does not stop the others, so that a redelivery has less to do. It
// returns a permanent error if any object failed permanently, else the first
// error. Each object is looked up in the ledger first.
func (p *Processor) Objects(ctx context.Context, messageID string, refs []ObjectRef) error {
	return p.objectsOf(ctx, messageID, refs, true)
}

// objectsOf is Objects; lookup false skips the ledger look-up, for a
// message that SQS delivers for the first time.
func (p *Processor) objectsOf(ctx context.Context, messageID string, refs []ObjectRef, lookup bool) error {
	if len(refs) == 1 {
		// CloudTrail names one object a notification: no goroutine.
		return p.object(ctx, messageID, refs[0], lookup)
	}
	var g errgroup.Group
	errs := make([]error, len(refs))
	for i, ref := range refs {
		g.Go(func() error {
			errs[i] = p.object(ctx, messageID, ref, lookup)
			return nil
		})
	}
	_ = g.Wait()
	var first error
	for _, err := range errs {
		if IsPermanent(err) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// slot is an object's place in Processor.objects. It is held while the
// object is fetched and decoded, given back once its rows are queued for a
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

// object commits one S3 object, retrying transient failures.
func (p *Processor) object(ctx context.Context, messageID string, ref ObjectRef, lookup bool) (err error) {
	p.metrics.objectStarted()
	defer p.metrics.objectFinished()
	log := quietOnRedelivery(ctx, p.log).With(zap.String(keyMessageID, messageID), zap.String(keyBucket, ref.Bucket), zap.String(keyKey, ref.Key))
	defer func() { p.recordFailure(ctx, messageID, ref, err, log) }()
	if err := p.allow.Check(ref.Bucket, ref.Key); err != nil {
		err = fmt.Errorf("s3://%s/%s: %w", ref.Bucket, ref.Key, err)
		log.Error("object refused", zap.Error(err))
		return err
	}
	if isDigest(ref.Key) {
		// Digest files prove integrity; they hold no events.
		log.Debug("digest file skipped")
		p.metrics.objectDone("digest", WriteResult{})
		return nil
	}
	s := &slot{sem: p.objects}
	defer s.release()
	if err := s.acquire(ctx); err != nil {
		return err
	}
	if lookup && p.ledger != nil {
		done, err := p.ledger.Processed(ctx, ref.Bucket, ref.Key)
		if err == nil && done {
			log.Info("object already committed; skipped")
			p.metrics.objectDone("already_processed", WriteResult{})
			return nil
		}
	}
	var res WriteResult
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
		if IsPermanent(err) {
			p.metrics.objectDone("failed", WriteResult{})
			// Name every object that fails, not only the first one that
			// the message's own error reports.
			log.Error("object refused", zap.Error(err))
		}
		return err
	}
	p.metrics.objectDone("ok", res)
	log.Debug("object committed", zap.Int("events", res.Events), zap.Int("inserted", res.Inserted),
		zap.Int("duplicates", res.Duplicates), zap.Int("rejected", res.Rejected))
	return nil
}

// fetchAndWrite fetches, decodes and commits one object; s is the object's
// slot, held on entry.
func (p *Processor) fetchAndWrite(ctx context.Context, messageID string, ref ObjectRef, s *slot) (WriteResult, error) {
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
		return WriteResult{}, fmt.Errorf("s3: get s3://%s/%s: %w", ref.Bucket, ref.Key, classifyS3(err))
	}
	defer out.Body.Close()
	p.metrics.fetched(time.Since(start))
	body := &countingReader{r: out.Body, watch: watch}
	obj := &Object{Bucket: ref.Bucket, Key: ref.Key, Size: aws.ToInt64(out.ContentLength), MessageID: messageID}
	r, release, err := p.readSmall(body, obj.Size)
	if err != nil {
		p.metrics.bytesFetched(body.n)
		if cause := context.Cause(getCtx); errors.Is(cause, errStalled) {
			err = cause
		}
		return WriteResult{}, fmt.Errorf("s3: read s3://%s/%s: %w", ref.Bucket, ref.Key, err)
	}
	defer release()
	res, err := p.write(ctx, obj, r, s)
	p.metrics.bytesFetched(body.n)
	if err != nil && body.err != nil && !IsPermanent(body.err) {
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

// write decodes r into obj's rows and commits them. A small object's slot
// s (nil for none) is given back once its rows are queued for a batch.
func (p *Processor) write(ctx context.Context, obj *Object, r io.Reader, s *slot) (WriteResult, error) {
	dec, _ := p.decoders.Get().(*Decoder)
	var err error
	if dec == nil {
		dec, err = NewDecoder(r, p.limits)
	} else {
		err = dec.Reset(r)
	}
	if err != nil {
		return WriteResult{}, Permanent(fmt.Errorf("decode %s: %w", obj.name(), err))
	}
	// The rows of an object decoded whole live in chunks of their own,
	// given back once its batch is committed (or failed): nothing reads
	// them after that.
	dec.arena.recycle(&p.chunks)
	// The decoder goes back to the pool as soon as the object is decoded:
	// rows copy what they keep.
	defer func() {
		if dec != nil {
			p.decoders.Put(dec)
		}
	}()

	// Decode ahead up to maxBufferedBytes of rows in memory: a whole
	// object is batched with others, a bigger one streamed alone.
	rows := &recordRows{dec: dec, obj: obj}
	start := time.Now()
	var buf []Row
	if b, ok := p.rowBufs.Get().(*[]Row); ok {
		buf = *b
	}
	defer func() {
		clear(buf)
		buf = buf[:0]
		p.rowBufs.Put(&buf)
	}()
	var size int
	for size <= maxBufferedBytes {
		var row Row
		err := rows.Next(&row)
		if err == io.EOF {
			obj.Rows = &BufferedRows{Rows: buf}
			decoded := time.Since(start)
			// The rows wait for their batch under the queue's budget,
			// not in the object's slot.
			n := int64(min(size, maxQueuedBytes))
			if err := p.queued.Acquire(ctx, n); err != nil {
				return WriteResult{}, err
			}
			defer p.queued.Release(n)
			s.release()
			chunks := dec.arena.take()
			p.decoders.Put(dec)
			dec = nil
			res, err := p.batches.write(ctx, obj, len(buf))
			p.chunks.put(chunks)
			p.metrics.stages(decoded, time.Since(start)-decoded)
			return res, err
		}
		if err != nil {
			return WriteResult{}, err
		}
		size += rowMemory(&row)
		if len(buf) == cap(buf) {
			// Grown by hand so as not to pass the rows the bound can
			// hold: the buffer is kept for the next object.
			buf = slices.Grow(buf, min(max(len(buf), 64), maxBufferedRows-len(buf)))
		}
		buf = append(buf, row)
	}
	// Too big to batch: the object is streamed, and its rows are left to
	// the garbage collector as the sink is done with them.
	dec.arena.recycle(nil)
	rows.ahead = buf
	obj.Rows = rows
	res, err := p.sink.Write(ctx, []*Object{obj})
	p.metrics.stages(rows.decodeTime, time.Since(start)-rows.decodeTime)
	if err != nil {
		return WriteResult{}, err
	}
	return res[0], nil
}

// recordRows is the RowSource of one object: it decodes and normalizes one
// record per call, and turns a record that cannot be normalized into a Reject.
// Rows decoded ahead come first.
type recordRows struct {
	dec        *Decoder
	obj        *Object
	ahead      []Row
	decodeTime time.Duration
}

func (r *recordRows) Next(row *Row) error {
	if len(r.ahead) > 0 {
		*row = r.ahead[0]
		r.ahead[0] = Row{}
		r.ahead = r.ahead[1:]
		return nil
	}
	start := time.Now()
	err := r.dec.NextRow(row, r.obj.Bucket, r.obj.Key)
	r.decodeTime += time.Since(start)
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return Permanent(fmt.Errorf("decode %s: %w", r.obj.name(), err))
	}
	return nil
}

func (o *Object) name() string {
	if o.Bucket == "" {
		return o.Key
	}
	return "s3://" + o.Bucket + "/" + o.Key
}

// isDigest reports whether key is a CloudTrail digest file.
func isDigest(key string) bool {
	return strings.Contains(key, "/CloudTrail-Digest/")
}

// classifyS3 marks the S3 errors that will not go away by retrying.
func classifyS3(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidObjectState", "NotFound":
			return Permanent(err)
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound, http.StatusForbidden:
			return Permanent(err)
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
