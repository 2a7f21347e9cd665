package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
	log     *zap.Logger
	metrics *Metrics
	objects *semaphore.Weighted
}

// NewProcessor returns a Processor. s3 and ledger may be nil for local
// ingest only.
func NewProcessor(cfg Config, s3c S3, sink Sink, ledger Ledger, m *Metrics, log *zap.Logger) *Processor {
	cfg.setDefaults()
	return &Processor{
		s3: s3c, sink: sink, ledger: ledger, limits: cfg.Limits, allow: cfg.Allow,
		backoff: cfg.Backoff, log: log, metrics: m,
		objects: semaphore.NewWeighted(int64(cfg.ObjectConcurrency)),
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
		return fmt.Errorf("s3://%s/%s: %w", ref.Bucket, ref.Key, err)
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
	out, err := p.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(ref.Bucket), Key: aws.String(ref.Key)})
	if err != nil {
		return WriteResult{}, fmt.Errorf("s3: get s3://%s/%s: %w", ref.Bucket, ref.Key, classifyS3(err))
	}
	defer out.Body.Close()
	p.metrics.fetched(time.Since(start))
	body := &countingReader{r: out.Body}
	res, err := p.write(ctx, &Object{
		Bucket: ref.Bucket, Key: ref.Key, Size: aws.ToInt64(out.ContentLength), MessageID: messageID,
	}, body)
	p.metrics.bytesFetched(body.n)
	if err != nil && body.err != nil && !IsPermanent(body.err) {
		// The body broke off mid-stream (connection reset, timeout): that
		// is the storage's fault, not the object's, and worth a retry.
		return res, fmt.Errorf("s3: read s3://%s/%s: %w", ref.Bucket, ref.Key, body.err)
	}
	return res, err
}

// write decodes r into obj's rows and commits them.
func (p *Processor) write(ctx context.Context, obj *Object, r io.Reader) (WriteResult, error) {
	dec, err := NewDecoder(r, p.limits)
	if err != nil {
		return WriteResult{}, Permanent(fmt.Errorf("decode %s: %w", obj.name(), err))
	}
	rows := &recordRows{dec: dec, obj: obj}
	obj.Rows = rows
	start := time.Now()
	res, err := p.sink.Write(ctx, []*Object{obj})
	p.metrics.stages(rows.decodeTime, time.Since(start)-rows.decodeTime)
	if err != nil {
		return WriteResult{}, err
	}
	return res[0], nil
}

// recordRows is the RowSource of one object: it decodes and normalizes one
// record per call, and turns a record that cannot be normalized into a Reject.
type recordRows struct {
	dec        *Decoder
	obj        *Object
	index      int
	decodeTime time.Duration
}

func (r *recordRows) Next(row *Row) error {
	start := time.Now()
	defer func() { r.decodeTime += time.Since(start) }()
	raw, err := r.dec.Next()
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
// than io.EOF.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}
