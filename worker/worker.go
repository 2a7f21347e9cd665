// Package worker turns SQS notifications of new CloudTrail log files into
// committed rows.
//
// A message's life reads top to bottom in this file: Worker.handle parses the
// notification, processes every object it names (fetch, decode, normalize,
// write), and deletes the message only when all of them are committed.
package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
)

// Log keys.
const (
	keyMessageID = "message_id"
	keyBucket    = "bucket"
	keyKey       = "key"
	keyFormat    = "format"
	// keyReceiveCount is SQS's ApproximateReceiveCount, on the lines of a
	// redelivered message.
	keyReceiveCount = "receive_count"
)

// SQS is what the worker needs from the queue.
type SQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// S3 is what the worker needs from object storage.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Config tunes a Worker. cmd/pgtrail fills every field from its
// environment, and the defaults operators see are the env tags there
// (cmd/pgtrail/config.go). The defaults noted below stand in for zero
// values only so that library callers and tests may leave fields out; they
// equal the env tags' (TestWorkerConfigComplete keeps them so) and are no
// second place to change a default.
type Config struct {
	QueueURL string
	// Pollers is the number of concurrent long polls (default 2).
	Pollers int
	// MaxInFlight caps the messages being processed at once (default 10×Pollers).
	MaxInFlight int
	// ObjectConcurrency caps the objects fetched and written at once across
	// the whole process (default 8).
	ObjectConcurrency int
	// WaitTime is the long-poll wait (default 20 s).
	WaitTime time.Duration
	// VisibilityTimeout is what the heartbeat sets every half period
	// (default 60 s); MaxVisibility is how long a message may be held in all
	// (default 1 h).
	VisibilityTimeout time.Duration
	MaxVisibility     time.Duration
	// ShutdownGrace is how long in-flight messages may take to finish after
	// a stop is asked (default 30 s). A negative value means none: they are
	// released at once.
	ShutdownGrace time.Duration
	// Limits bound what one object may cost.
	Limits cloudtrail.Limits
	// Allow restricts the objects a notification may name.
	Allow AllowList
	// Backoff governs retries of transient failures (default retry.DefaultBackoff).
	Backoff retry.Backoff
	// Drain makes Run return once a receive finds the queue empty and no
	// message is being processed: for backfills and demos.
	Drain bool
	// StallTimeout is how long a GetObject may wait for S3's answer, or for
	// the next bytes of the body, before the attempt is given up and
	// retried (default 30 s). It is not a deadline: a slow body that keeps
	// coming is read to the end.
	StallTimeout time.Duration
	// Gate, when not nil, pauses the pollers while the database is
	// unreachable and holds the messages in hand until it answers; give the
	// Processor its Sink so that failed writes reach it.
	Gate *Gate
}

// WithDefaults returns c with the defaults in place of its zero values
// (see Config).
func (c Config) WithDefaults() Config {
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Pollers <= 0 {
		c.Pollers = 2
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 10 * c.Pollers
	}
	if c.ObjectConcurrency <= 0 {
		c.ObjectConcurrency = 8
	}
	if c.WaitTime <= 0 {
		c.WaitTime = 20 * time.Second
	}
	if c.VisibilityTimeout <= 0 {
		c.VisibilityTimeout = 60 * time.Second
	}
	if c.MaxVisibility <= 0 {
		c.MaxVisibility = time.Hour
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.Backoff.Attempts <= 0 {
		c.Backoff = retry.DefaultBackoff
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 30 * time.Second
	}
}

// Worker consumes one queue. Run it once.
type Worker struct {
	cfg     Config
	sqs     SQS
	proc    *Processor
	log     *zap.Logger
	metrics *Metrics
	deletes *deleter

	inflight *semaphore.Weighted // messages
	handling atomic.Int64        // messages being handled
	started  time.Time
	lastOK   atomic.Int64 // Unix nanoseconds of the latest successful receive
}

// New returns a Worker that reads notifications from q and hands their
// objects to proc.
func New(cfg Config, q SQS, proc *Processor, m *Metrics, log *zap.Logger) *Worker {
	cfg.setDefaults()
	return &Worker{
		cfg: cfg, sqs: q, proc: proc, log: log, metrics: m,
		deletes:  newDeleter(q, cfg.QueueURL),
		inflight: semaphore.NewWeighted(int64(cfg.MaxInFlight)),
		started:  time.Now(),
	}
}

// Ready reports an error while the database is unreachable (the pollers are
// paused), or when SQS has not answered a receive for longer than two long
// polls and a minute: credentials, network or the queue are broken.
func (w *Worker) Ready() error {
	if w.cfg.Gate != nil && w.cfg.Gate.Down() {
		return errPaused
	}
	last := time.Unix(0, w.lastOK.Load())
	if w.lastOK.Load() == 0 {
		last = w.started
	}
	if since := time.Since(last); since > 2*w.cfg.WaitTime+time.Minute {
		return fmt.Errorf("sqs: no successful receive for %s", since.Round(time.Second))
	}
	return nil
}

// errPaused is what Ready says while the database is unreachable. The
// database's own error, which names its user, database and host, is in the
// log.
var errPaused = errors.New("database unreachable; pollers paused")

// Run polls until ctx ends, then lets in-flight messages finish within the
// shutdown grace, releases those that did not, and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	// Messages are processed under work, which outlives ctx by the grace.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	// Handlers learn that the worker stops (and release the messages they
	// hold for the database) once every poller has returned, not when ctx
	// ends: a message released while a receive of this worker is still
	// under way would be taken again by that receive, a receive more
	// towards the dead-letter queue.
	stopping, stopped := context.WithCancel(context.WithoutCancel(ctx))
	defer stopped()

	// A handler per message that may be in flight, kept for the whole
	// run: a message is handled on a goroutine whose stack has already
	// grown to what the AWS SDK and the database driver need, rather than
	// on a new one that grows it again, copy by copy.
	msgs := make(chan types.Message, w.cfg.MaxInFlight)
	var handlers sync.WaitGroup
	for range w.cfg.MaxInFlight {
		handlers.Go(func() {
			for m := range msgs {
				w.handle(work, stopping, m)
				w.handling.Add(-1)
				w.inflight.Release(1)
			}
		})
	}

	// Pollers stop when ctx ends or, with Drain, when the queue is empty.
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var pollers errgroup.Group
	for i := range w.cfg.Pollers {
		pollers.Go(func() error {
			w.poll(pollCtx, msgs, i, stopPolling)
			return nil
		})
	}
	_ = pollers.Wait()
	stopped()
	close(msgs)
	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	if w.cfg.ShutdownGrace < 0 {
		w.log.Info("stopped receiving; no shutdown grace: releasing in-flight messages")
		cancelWork()
		<-done
		return nil
	}
	w.log.Info("stopped receiving; finishing in-flight messages", zap.Duration("grace", w.cfg.ShutdownGrace))
	grace := time.NewTimer(w.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		w.log.Warn("shutdown grace over; releasing unfinished messages")
		cancelWork()
		<-done
	}
	return nil
}

// receiveMargin is how much longer than the long-poll wait a receive may
// take before it is abandoned; messages it may have received become
// visible again after their timeout.
const receiveMargin = 10 * time.Second

// poll is one long-poll loop. It hands each message it receives to the
// handlers on msgs, holding a place in inflight that the handler gives back.
func (w *Worker) poll(ctx context.Context, msgs chan<- types.Message, id int, stopPolling func()) {
	log := w.log.With(zap.Int("poller", id))
	failures := 0
	for ctx.Err() == nil {
		// Ask only for as many messages as there is room for.
		if err := w.inflight.Acquire(ctx, 1); err != nil {
			return
		}
		// Take no work that cannot be written.
		if g := w.cfg.Gate; g != nil && !g.up() {
			if err := g.Wait(ctx); err != nil {
				w.inflight.Release(1)
				return
			}
			// The pause was not SQS's silence: Ready counts from its end.
			w.lastOK.Store(time.Now().UnixNano())
		}
		room := int64(1)
		for room < 10 && w.inflight.TryAcquire(1) {
			room++
		}
		// The SDK sets SQS no read timeout: the bound keeps a connection
		// that goes silent from holding this poller for good.
		rctx, cancel := context.WithTimeout(ctx, w.cfg.WaitTime+receiveMargin)
		out, err := w.sqs.ReceiveMessage(rctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(w.cfg.QueueURL),
			MaxNumberOfMessages: int32(room),
			WaitTimeSeconds:     int32(w.cfg.WaitTime / time.Second),
			VisibilityTimeout:   int32(w.cfg.VisibilityTimeout / time.Second),
			// Only what the worker reads: the receive count
			// (firstDelivery) and the time sent (the oldest age metric).
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{
				types.MessageSystemAttributeNameApproximateReceiveCount,
				types.MessageSystemAttributeNameSentTimestamp,
			},
		})
		cancel()
		if err != nil {
			w.inflight.Release(room)
			if ctx.Err() != nil {
				return
			}
			failures++
			w.metrics.receiveFailed()
			log.Error("receive messages", zap.Error(err), zap.Int("failures", failures))
			sleep(ctx, w.cfg.Backoff.Delay(failures))
			continue
		}
		failures = 0
		w.lastOK.Store(time.Now().UnixNano())
		w.metrics.received(out.Messages)
		w.inflight.Release(room - int64(len(out.Messages)))
		if len(out.Messages) == 0 && w.cfg.Drain && w.handling.Load() == 0 {
			log.Info("queue drained; stopping")
			stopPolling()
			return
		}
		w.handling.Add(int64(len(out.Messages)))
		for _, m := range out.Messages {
			// Never blocks: msgs has room for every message in flight.
			msgs <- m
		}
	}
}

// handle owns one message: it deletes it once every object it names is
// committed, and otherwise leaves it for redelivery or the dead-letter queue.
// The message is processed under ctx; stopping ends when the worker is
// asked to stop.
func (w *Worker) handle(ctx, stopping context.Context, m types.Message) {
	id := aws.ToString(m.MessageId)
	log := w.log.With(zap.String(keyMessageID, id))
	w.metrics.messageStarted()
	defer w.metrics.messageDone()
	// A message refused for good is logged at error level on its first
	// receive (see redelivery.go); permanent is the logger for that.
	permanent := log
	if n := receiveCount(m); n > 1 {
		ctx = withRedelivery(ctx)
		permanent = quiet(log).With(zap.Int(keyReceiveCount, n))
	}

	n, err := ParseNotification([]byte(aws.ToString(m.Body)))
	if err != nil {
		// Never delete what could not be understood: the redrive policy
		// moves it to the dead-letter queue.
		permanent.Error("unrecognized message left for the dead-letter queue", zap.Error(err))
		w.metrics.failed("unrecognized")
		w.release(log, m)
		return
	}
	log = log.With(zap.String(keyFormat, n.Format))
	if n.Kind != NotificationObjects {
		log.Info("message names no object; deleting it", zap.Stringer("kind", n.Kind))
		w.delete(ctx, log, m)
		return
	}

	hb := w.startHeartbeat(ctx, log, aws.ToString(m.ReceiptHandle))
	lookup := !firstDelivery(m)
	held := notHeld
	for {
		err = w.proc.commitEach(ctx, id, n.Objects, lookup)
		if err == nil || retry.IsPermanent(err) || ctx.Err() != nil {
			break
		}
		if held = w.hold(ctx, stopping, log, hb.deadline); held != heldResumed {
			break
		}
		// Objects committed before the outage are in the ledger.
		lookup = true
	}
	hb.stop()

	switch {
	case err == nil:
		w.delete(ctx, log, m)
	case ctx.Err() != nil, held == heldStopped:
		log.Info("shutdown before the message was done; releasing it")
		w.metrics.failed("shutdown")
		w.release(log, m)
	case retry.IsPermanent(err):
		permanent.Error("message left for the dead-letter queue", zap.Error(err))
		w.metrics.failed("permanent")
		w.release(log, m)
	default:
		// Transient and retried already: let the visibility timeout pass,
		// which spaces out the next attempt.
		log.Error("message left for redelivery", zap.Error(err))
		w.metrics.failed("transient")
	}
}

// holdOutcome is how hold ended.
type holdOutcome int

const (
	notHeld     holdOutcome = iota // the database answers: the failure was elsewhere
	heldResumed                    // the database answers again: try once more
	heldStopped                    // the worker is stopping
	heldTooLong                    // held for MaxVisibility: the message is let go
)

// hold keeps a message whose objects failed transiently, when the cause is
// that the database is unreachable: the heartbeat keeps the message
// invisible until the database answers again, and its objects are then
// tried again, within the same receive. Letting it come back instead would
// count a receive towards the dead-letter queue at every visibility
// timeout of the outage. A message is held until the worker is asked to
// stop (stopping ends) or until the heartbeat gives it up (until).
func (w *Worker) hold(ctx, stopping context.Context, log *zap.Logger, until time.Time) holdOutcome {
	g := w.cfg.Gate
	if g == nil || !g.check(ctx) {
		return notHeld
	}
	log.Info("database unreachable; holding the message until it answers")
	hctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	defer context.AfterFunc(stopping, cancel)()
	if err := g.Wait(hctx); err != nil {
		if stopping.Err() != nil {
			return heldStopped
		}
		return heldTooLong
	}
	log.Info("database answers again; retrying the message")
	return heldResumed
}

// firstDelivery reports whether SQS delivers m for the first time. Its
// objects are then fetched without a ledger look-up: only an object
// notified twice, which is rare, can be there already, and the write counts
// its events as duplicates. The objects of a redelivery, or of a queue that
// does not say, are looked up before anything is fetched.
func firstDelivery(m types.Message) bool {
	return m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)] == "1"
}

// delete removes a finished message from the queue, in a
// DeleteMessageBatch call it may share with other messages finishing at
// the same time (deleter.go). It returns once this message's own entry has
// succeeded or failed for good.
func (w *Worker) delete(ctx context.Context, log *zap.Logger, m types.Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := w.cfg.Backoff.Retry(ctx, func() error {
		return w.deletes.delete(ctx, aws.ToString(m.ReceiptHandle))
	}, nil)
	if err != nil {
		// The events are committed: a redelivery finds the objects in the
		// ledger and costs no duplicate.
		log.Error("delete message", zap.Error(err))
		return
	}
	w.metrics.deleted()
}

// release makes a message visible again at once, so that a shutdown hands
// it to another worker and a poison message reaches the dead-letter queue
// without waiting out its timeout.
func (w *Worker) release(log *zap.Logger, m types.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := w.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(w.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
	})
	if err != nil {
		log.Warn("release message", zap.Error(err))
	}
}

// AllowList restricts the objects a notification may make the worker read,
// so that a forged notification cannot point it at arbitrary objects. Empty
// lists allow everything.
type AllowList struct {
	Buckets  []string
	Prefixes []string
}

// Check returns a permanent error when the object is not allowed.
func (a AllowList) Check(bucket, key string) error {
	if len(a.Buckets) > 0 && !slices.Contains(a.Buckets, bucket) {
		return retry.Permanent(fmt.Errorf("bucket %q is not in the allow-list", bucket))
	}
	if len(a.Prefixes) > 0 && !slices.ContainsFunc(a.Prefixes, func(p string) bool { return strings.HasPrefix(key, p) }) {
		return retry.Permanent(fmt.Errorf("key %q is under no allowed prefix", key))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
