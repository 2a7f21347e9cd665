// Package backfill loads the CloudTrail history already in a bucket, for a
// range of days, through the same object processor as the queue.
//
// The life of a backfill, in the order Run does it:
//
//  1. Discover. CloudTrail writes under
//     [prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/, and
//     Insights files, which are events too, under CloudTrail-Insight/ in
//     the same layout (cloudtrail.EventKinds). Delimiter listings ("/")
//     find the organization ids, accounts and regions, one level at a
//     time: a handful of requests, whatever the bucket holds.
//     CloudTrail-Digest/ holds digests, not events, and is never listed.
//  2. List. Each day prefix in range, for each account, kind and region,
//     is listed whole (with its pages), ListConcurrency at a time. Nothing
//     outside the range is ever listed: the listing calls grow with the
//     days in range, not with the bucket.
//  3. Skip what is stored. Every listed object is looked up in the ledger;
//     one that is there was committed, by the queue or by an earlier run,
//     and is not read again. This is what makes a backfill safe beside
//     pgtrail run, and resumable after a crash: a re-run reads only what
//     was not committed.
//  4. Load, enqueue, or count. The remaining objects go to the worker's
//     Processor (same decode, caps, rejects, object concurrency, one
//     transaction per batch with its ledger rows), or, with QueueURL set,
//     to the queue as CloudTrail's own notification, one per object, for
//     the fleet to load; or, dry, are only counted.
//  5. Report. Progress is sent to Config.Progress as it goes; Run returns
//     the Summary, with every object that failed named.
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// Lister lists a bucket: the one S3 call a backfill makes besides the
// processor's GetObject.
type Lister interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Ledger tells whether an object was already committed (sink.Postgres).
type Ledger interface {
	Processed(ctx context.Context, bucket, key string) (bool, error)
}

// Processor commits one object (worker.Processor.CommitObject).
type Processor interface {
	CommitObject(ctx context.Context, ref worker.ObjectRef) (sink.WriteResult, error)
}

// Queue takes notifications for -enqueue (an SQS client).
type Queue interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Config says what to backfill and how.
type Config struct {
	Bucket string
	// Prefix is the trail's S3 key prefix, without AWSLogs/; empty for none.
	Prefix string
	// From and To are the first and last days, inclusive, in UTC.
	From, To time.Time
	// Accounts and Regions, when set, keep only those.
	Accounts, Regions []string
	// DryRun lists and counts, and reads nothing.
	DryRun bool
	// Digests lists the digest files in range too (CloudTrail-Digest/),
	// and has the processor check them once the log files are loaded,
	// each chain in time order (docs/integrity.md).
	Digests bool
	// QueueURL, when set, makes Run enqueue one notification per object
	// instead of reading it.
	QueueURL string
	// ListConcurrency bounds the day listings in progress; 0 means 8.
	ListConcurrency int
	// ObjectConcurrency bounds the objects looked up and handed on at
	// once; 0 means 8. The processor has its own bound as well.
	ObjectConcurrency int
	// Progress, when set, is called with the figures so far every
	// ProgressEvery (0: one second) and once at the end.
	Progress      func(Stats)
	ProgressEvery time.Duration
}

// Deps are the services a backfill uses. Processor is needed unless DryRun
// or a QueueURL is set; Queue only with a QueueURL.
type Deps struct {
	S3        Lister
	Ledger    Ledger
	Processor Processor
	Queue     Queue
}

// Stats are a backfill's figures so far.
type Stats struct {
	Days, DaysListed    int   // day listings to do, done
	Listed, ListedBytes int64 // objects found in range and their bytes
	Stored, StoredBytes int64 // objects already in the ledger, skipped
	Done, Failed        int64 // objects loaded (or enqueued), failed
	DoneBytes           int64
	Events, Inserted    int64
	Duplicates, Rejects int64
	ListCalls           int64 // ListObjectsV2 requests made
	Elapsed             time.Duration
	Discovering         bool
	// LastErrors are the latest failures, newest last.
	LastErrors []string
}

// Remaining estimates the time left from the bytes still to load, at the
// rate so far; 0 when unknown.
func (s Stats) Remaining() time.Duration {
	left := s.ListedBytes - s.StoredBytes - s.DoneBytes
	if s.DoneBytes == 0 || left <= 0 || s.DaysListed < s.Days {
		return 0
	}
	return time.Duration(float64(s.Elapsed) * float64(left) / float64(s.DoneBytes))
}

// Stream is one account's log files of one kind in one region.
type Stream struct {
	Org     string // o-… for an organization trail, else empty
	Account string
	Kind    cloudtrail.KeyKind // KeyLog, KeyInsight, or KeyDigest (Config.Digests)
	Region  string
}

// accountPrefix is [prefix/]AWSLogs/[o-org/]ACCOUNT/.
func (s Stream) accountPrefix(root string) string {
	if s.Org != "" {
		root += s.Org + "/"
	}
	return root + s.Account + "/"
}

// folder is the stream's folder in a trail of the given key prefix.
func (s Stream) folder(prefix string) cloudtrail.LogFolder {
	return cloudtrail.LogFolder{Prefix: strings.Trim(prefix, "/"), OrgID: s.Org, AccountID: s.Account, Region: s.Region, Kind: s.Kind}
}

// Count is what one account and region holds in range.
type Count struct {
	Account, Region        string
	Objects, Bytes, Stored int64
}

// Summary is the end of a backfill.
type Summary struct {
	Stats
	// PerRegion counts the objects by account and region, sorted.
	PerRegion []Count
	// Failures name each object that failed, with its error.
	Failures []string
}

// kinds are the kinds of files to list: those that hold events, and the
// digests when Config.Digests asks for them.
func (b *run) kinds() []cloudtrail.KeyKind {
	if b.cfg.Digests {
		return append(cloudtrail.EventKinds(), cloudtrail.KeyDigest)
	}
	return cloudtrail.EventKinds()
}

// Run backfills cfg's range. It returns an error only when it cannot
// proceed (a listing fails, ctx ends); objects that fail are in the
// Summary's Failures.
func Run(ctx context.Context, cfg Config, d Deps) (Summary, error) {
	if cfg.ListConcurrency <= 0 {
		cfg.ListConcurrency = 8
	}
	if cfg.ObjectConcurrency <= 0 {
		cfg.ObjectConcurrency = 8
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	days, err := Days(cfg.From, cfg.To)
	if err != nil {
		return Summary{}, err
	}
	b := &run{cfg: cfg, d: d, start: time.Now(), perRegion: map[[2]string]*Count{}}
	b.discovering.Store(true)
	stopProgress := b.reportEvery(cfg.ProgressEvery)
	defer stopProgress()

	streams, err := b.discover(ctx)
	b.discovering.Store(false)
	if err != nil {
		return b.summary(), err
	}
	b.days.Store(int64(len(streams) * len(days)))

	refs := make(chan listed, 1024)
	g, gctx := errgroup.WithContext(ctx)
	// Listers: each day of each stream, ListConcurrency at a time.
	g.Go(func() error {
		defer close(refs)
		lg, lctx := errgroup.WithContext(gctx)
		lg.SetLimit(cfg.ListConcurrency)
		for _, day := range days {
			for _, s := range streams {
				lg.Go(func() error { return b.listDay(lctx, s, day, refs) })
			}
		}
		return lg.Wait()
	})
	// Handlers: ledger look-up, then load, enqueue or count.
	var enq *enqueuer
	if cfg.QueueURL != "" && !cfg.DryRun {
		enq = newEnqueuer(d.Queue, cfg.QueueURL, cfg.Bucket, b)
	}
	for range cfg.ObjectConcurrency {
		g.Go(func() error {
			for r := range refs {
				if err := b.handle(gctx, r, enq); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	if err == nil {
		err = b.checkDigests(ctx)
	}
	if enq != nil {
		if ferr := enq.flush(ctx); err == nil {
			err = ferr
		}
	}
	stopProgress()
	return b.summary(), err
}

// Days are the UTC days from from to to, inclusive.
func Days(from, to time.Time) ([]time.Time, error) {
	from = from.UTC().Truncate(24 * time.Hour)
	to = to.UTC().Truncate(24 * time.Hour)
	if from.IsZero() || to.Before(from) {
		return nil, fmt.Errorf("backfill: empty range %s to %s", from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	var days []time.Time
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	return days, nil
}

// run is one backfill in progress.
type run struct {
	cfg   Config
	d     Deps
	start time.Time

	discovering                            atomic.Bool
	days, daysListed                       atomic.Int64
	listed, listedBytes                    atomic.Int64
	stored, storedBytes                    atomic.Int64
	done, failed, doneBytes                atomic.Int64
	events, inserted, duplicates, rejected atomic.Int64
	listCalls                              atomic.Int64

	mu        sync.Mutex
	perRegion map[[2]string]*Count
	failures  []string
	// digests wait for the log files to be loaded (checkDigests).
	digests []listed
}

// listed is one object found in range.
type listed struct {
	stream Stream
	key    string
	size   int64
}

// root is the key prefix of the AWSLogs folder.
func (b *run) root() string {
	p := strings.Trim(b.cfg.Prefix, "/")
	if p != "" {
		p += "/"
	}
	return p + "AWSLogs/"
}

// folders lists the folder names right under prefix (a delimiter listing).
func (b *run) folders(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	p := s3.NewListObjectsV2Paginator(b.d.S3, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.cfg.Bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		b.listCalls.Add(1)
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("backfill: list s3://%s/%s: %w", b.cfg.Bucket, prefix, err)
		}
		for _, cp := range out.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if name != "" {
				names = append(names, name)
			}
		}
	}
	return names, nil
}

// discover finds the streams to list: organizations, accounts, kinds and
// regions, filtered by cfg.Accounts and cfg.Regions.
func (b *run) discover(ctx context.Context) ([]Stream, error) {
	root := b.root()
	top, err := b.folders(ctx, root)
	if err != nil {
		return nil, err
	}
	type account struct{ org, id string }
	var accounts []account
	for _, name := range top {
		if !strings.HasPrefix(name, "o-") {
			accounts = append(accounts, account{id: name})
			continue
		}
		ids, err := b.folders(ctx, root+name+"/")
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			accounts = append(accounts, account{org: name, id: id})
		}
	}
	var streams []Stream
	for _, a := range accounts {
		if len(b.cfg.Accounts) > 0 && !slices.Contains(b.cfg.Accounts, a.id) {
			continue
		}
		base := Stream{Org: a.org, Account: a.id}.accountPrefix(root)
		have, err := b.folders(ctx, base)
		if err != nil {
			return nil, err
		}
		for _, kind := range b.kinds() {
			if !slices.Contains(have, kind.Folder()) {
				continue
			}
			regions, err := b.folders(ctx, base+kind.Folder()+"/")
			if err != nil {
				return nil, err
			}
			for _, r := range regions {
				if len(b.cfg.Regions) > 0 && !slices.Contains(b.cfg.Regions, r) {
					continue
				}
				streams = append(streams, Stream{Org: a.org, Account: a.id, Kind: kind, Region: r})
			}
		}
	}
	return streams, nil
}

// listDay lists one stream's day and sends its log files to out.
func (b *run) listDay(ctx context.Context, s Stream, day time.Time, out chan<- listed) error {
	prefix := s.folder(b.cfg.Prefix).DayPrefix(day)
	p := s3.NewListObjectsV2Paginator(b.d.S3, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.cfg.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		b.listCalls.Add(1)
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("backfill: list s3://%s/%s: %w", b.cfg.Bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !strings.HasSuffix(key, ".json.gz") && !strings.HasSuffix(key, ".json") {
				continue
			}
			size := aws.ToInt64(o.Size)
			b.listed.Add(1)
			b.listedBytes.Add(size)
			b.count(s, func(c *Count) { c.Objects++; c.Bytes += size })
			select {
			case out <- listed{stream: s, key: key, size: size}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	b.daysListed.Add(1)
	return nil
}

func (b *run) count(s Stream, f func(*Count)) {
	k := [2]string{s.Account, s.Region}
	b.mu.Lock()
	c := b.perRegion[k]
	if c == nil {
		c = &Count{Account: s.Account, Region: s.Region}
		b.perRegion[k] = c
	}
	f(c)
	b.mu.Unlock()
}

// handle skips an object the ledger holds, and loads, enqueues or counts
// the others. Only a ledger that cannot be read stops the backfill.
func (b *run) handle(ctx context.Context, l listed, enq *enqueuer) error {
	done, err := b.d.Ledger.Processed(ctx, b.cfg.Bucket, l.key)
	if err != nil {
		return fmt.Errorf("backfill: ledger: %w", err)
	}
	if done {
		b.stored.Add(1)
		b.storedBytes.Add(l.size)
		b.count(l.stream, func(c *Count) { c.Stored++ })
		return nil
	}
	switch {
	case b.cfg.DryRun:
		return nil
	case enq != nil:
		return enq.add(ctx, l)
	case l.stream.Kind == cloudtrail.KeyDigest:
		b.mu.Lock()
		b.digests = append(b.digests, l)
		b.mu.Unlock()
		return nil
	}
	return b.load(ctx, l)
}

// checkDigests hands the digests found to the processor once the log files
// they list are loaded, so that each is compared with what was loaded, and
// each chain (a stream: its keys sort by end time) in order, so that each
// digest's previous one is checked before it. Chains go side by side.
func (b *run) checkDigests(ctx context.Context) error {
	byStream := map[Stream][]listed{}
	for _, l := range b.digests {
		byStream[l.stream] = append(byStream[l.stream], l)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.cfg.ObjectConcurrency)
	for _, chain := range byStream {
		slices.SortFunc(chain, func(x, y listed) int { return strings.Compare(x.key, y.key) })
		g.Go(func() error {
			for _, l := range chain {
				if err := b.load(gctx, l); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// load commits one object through the processor and counts it; only ctx
// ending is an error.
func (b *run) load(ctx context.Context, l listed) error {
	res, err := b.d.Processor.CommitObject(ctx, worker.ObjectRef{Bucket: b.cfg.Bucket, Key: l.key, Size: l.size})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.fail(l.key, err)
		return nil
	}
	b.done.Add(1)
	b.doneBytes.Add(l.size)
	b.events.Add(int64(res.Events))
	b.inserted.Add(int64(res.Inserted))
	b.duplicates.Add(int64(res.Duplicates))
	b.rejected.Add(int64(res.Rejected))
	return nil
}

func (b *run) fail(key string, err error) {
	b.failed.Add(1)
	b.mu.Lock()
	b.failures = append(b.failures, fmt.Sprintf("s3://%s/%s: %v", b.cfg.Bucket, key, err))
	b.mu.Unlock()
}

func (b *run) stats() Stats {
	s := Stats{
		Days: int(b.days.Load()), DaysListed: int(b.daysListed.Load()),
		Listed: b.listed.Load(), ListedBytes: b.listedBytes.Load(), Stored: b.stored.Load(), StoredBytes: b.storedBytes.Load(),
		Done: b.done.Load(), Failed: b.failed.Load(), DoneBytes: b.doneBytes.Load(),
		Events: b.events.Load(), Inserted: b.inserted.Load(), Duplicates: b.duplicates.Load(),
		Rejects: b.rejected.Load(), ListCalls: b.listCalls.Load(),
		Elapsed: time.Since(b.start), Discovering: b.discovering.Load(),
	}
	b.mu.Lock()
	s.LastErrors = slices.Clone(b.failures[max(0, len(b.failures)-3):])
	b.mu.Unlock()
	return s
}

func (b *run) summary() Summary {
	s := Summary{Stats: b.stats()}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.perRegion {
		s.PerRegion = append(s.PerRegion, *c)
	}
	slices.SortFunc(s.PerRegion, func(a, b Count) int {
		return strings.Compare(a.Account+"/"+a.Region, b.Account+"/"+b.Region)
	})
	s.Failures = slices.Clone(b.failures)
	slices.Sort(s.Failures)
	return s
}

// reportEvery calls cfg.Progress every d until the returned function is
// called, which reports once more and may be called again.
func (b *run) reportEvery(d time.Duration) func() {
	if b.cfg.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.cfg.Progress(b.stats())
			case <-stop:
				b.cfg.Progress(b.stats())
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(stop); <-finished })
	}
}

// Notification is CloudTrail's own SNS message for one log file, the body
// the worker parses (worker.ParseNotification).
func Notification(bucket, key string) string {
	body, _ := json.Marshal(struct {
		Bucket string   `json:"s3Bucket"`
		Keys   []string `json:"s3ObjectKey"`
	}{bucket, []string{key}})
	return string(body)
}

// enqueuer sends notifications in batches of ten, SQS's most per call.
type enqueuer struct {
	q       Queue
	url     string
	bucket  string
	b       *run
	mu      sync.Mutex
	pending []listed
}

func newEnqueuer(q Queue, url, bucket string, b *run) *enqueuer {
	return &enqueuer{q: q, url: url, bucket: bucket, b: b}
}

func (e *enqueuer) add(ctx context.Context, l listed) error {
	e.mu.Lock()
	e.pending = append(e.pending, l)
	var batch []listed
	if len(e.pending) == 10 {
		batch, e.pending = e.pending, nil
	}
	e.mu.Unlock()
	return e.send(ctx, batch)
}

func (e *enqueuer) flush(ctx context.Context) error {
	e.mu.Lock()
	batch := e.pending
	e.pending = nil
	e.mu.Unlock()
	return e.send(ctx, batch)
}

// send sends batch; an entry SQS refuses is retried a few times, then
// counted as failed.
func (e *enqueuer) send(ctx context.Context, batch []listed) error {
	for attempt := 0; len(batch) > 0; attempt++ {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(e.url)}
		for i, l := range batch {
			in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(Notification(e.bucket, l.key))})
		}
		out, err := e.q.SendMessageBatch(ctx, in)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if attempt >= 4 {
				return fmt.Errorf("backfill: enqueue: %w", err)
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
			continue
		}
		// Every entry is either Successful or Failed: what is not Failed
		// was sent. (goaws, the local SQS, leaves Successful empty.)
		failed := map[int]sqstypes.BatchResultErrorEntry{}
		for _, f := range out.Failed {
			if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(batch) {
				failed[i] = f
			}
		}
		var again []listed
		for i, l := range batch {
			f, bad := failed[i]
			switch {
			case !bad:
				e.b.done.Add(1)
				e.b.doneBytes.Add(l.size)
			case attempt >= 4 || f.SenderFault:
				e.b.fail(l.key, errors.New("enqueue: "+aws.ToString(f.Code)+": "+aws.ToString(f.Message)))
			default:
				again = append(again, l)
			}
		}
		batch = again
	}
	return nil
}
