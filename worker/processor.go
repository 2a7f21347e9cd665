package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	objects *semaphore.Weighted
	batches *batcher
	// decoders keeps Decoders, with their gzip readers and buffers, and
	// rowBufs the []Row an object is decoded into, for reuse.
	decoders sync.Pool
	rowBufs  sync.Pool
}

// NewProcessor returns a Processor. s3 and ledger may be nil for local
// ingest only.
func NewProcessor(cfg Config, s3c S3, sink Sink, ledger Ledger, m *Metrics, log *zap.Logger) *Processor {
	cfg.setDefaults()
	return &Processor{
		s3: s3c, sink: sink, ledger: ledger, limits: cfg.Limits, allow: cfg.Allow,
		backoff: cfg.Backoff, stall: cfg.StallTimeout, log: log, metrics: m,
		objects: semaphore.NewWeighted(int64(cfg.ObjectConcurrency)),
		// Two transactions at a time keep the database busy while the
		// next batch gathers; more only contend on a small server.
		batches: newBatcher(sink, min(2, cfg.ObjectConcurrency)),
	}
}

// Objects commits every object of one message. Objects are independent: one
// failing does not stop the others, so that a redelivery has less to do. It
// returns a permanent error if any object failed permanently, else the first
// error.
func (p *Processor) Objects(ctx context.Context, messageID string, refs []ObjectRef) error {
	var g errgroup.Group
	errs := make([]error, len(refs))
	for i, ref := range refs {
		if err := p.objects.Acquire(ctx, 1); err != nil {
			return err
		}
		g.Go(func() error {
			defer p.objects.Release(1)
			p.metrics.objectStarted()
			defer p.metrics.objectFinished()
			errs[i] = p.object(ctx, messageID, ref)
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

// object commits one S3 object, retrying transient failures.
func (p *Processor) object(ctx context.Context, messageID string, ref ObjectRef) error {
	log := p.log.With(zap.String(keyMessageID, messageID), zap.String(keyBucket, ref.Bucket), zap.String(keyKey, ref.Key))
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
	if p.ledger != nil {
		done, err := p.ledger.Processed(ctx, ref.Bucket, ref.Key)
		if err == nil && done {
			log.Info("object already committed; skipped")
			p.metrics.objectDone("already_processed", WriteResult{})
			return nil
		}
	}
	var res WriteResult
	err := p.backoff.Retry(ctx, func() error {
		var err error
		res, err = p.fetchAndWrite(ctx, messageID, ref)
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

func (p *Processor) fetchAndWrite(ctx context.Context, messageID string, ref ObjectRef) (WriteResult, error) {
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
	res, err := p.write(ctx, &Object{
		Bucket: ref.Bucket, Key: ref.Key, Size: aws.ToInt64(out.ContentLength), MessageID: messageID,
	}, body)
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

// write decodes r into obj's rows and commits them.
func (p *Processor) write(ctx context.Context, obj *Object, r io.Reader) (WriteResult, error) {
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
	defer p.decoders.Put(dec)

	// Decode ahead up to maxBufferedBytes: a whole object is batched with
	// others, a bigger one streamed alone.
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
			res, err := p.batches.write(ctx, obj, len(buf))
			p.metrics.stages(decoded, time.Since(start)-decoded)
			return res, err
		}
		if err != nil {
			return WriteResult{}, err
		}
		size += rows.size
		buf = append(buf, row)
	}
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
	index      int
	size       int // bytes of the latest record
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
	defer func() { r.decodeTime += time.Since(start) }()
	raw, err := r.dec.Next()
	r.size = len(raw)
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return Permanent(fmt.Errorf("decode %s: %w", r.obj.name(), err))
	}
	idx := r.index
	r.index++
	ev, err := Normalize(raw, r.obj.Bucket, r.obj.Key)
	if err != nil {
		row.Reject = &Reject{S3Bucket: r.obj.Bucket, S3Key: r.obj.Key, Index: idx, Reason: err.Error(), Raw: string(raw)}
		return nil
	}
	row.Event = ev
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
