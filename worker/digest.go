package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
)

// DigestStore keeps the verdicts on digests and their log files;
// sink.Postgres is the one cmd/pgtrail wires in.
type DigestStore interface {
	Digest(ctx context.Context, bucket, key string) (sink.DigestRecord, bool, error)
	RecordDigest(ctx context.Context, r sink.DigestRecord, files []cloudtrail.DigestLogFile, sweep *sink.Sweep) (sink.DigestFiles, error)
}

// DigestKeySource gives the public keys that may have signed a digest of
// a trail whose home region is homeRegion, signed from start to end by the
// key with fingerprint: the keys it knows for that region, fetched if the
// fingerprint is not among them. A key it cannot find is not an error (the
// digest's verdict then says so); an error is worth a retry.
type DigestKeySource interface {
	DigestKeys(ctx context.Context, homeRegion, fingerprint string, start, end time.Time) (*cloudtrail.DigestKeys, error)
}

// DefaultDigestGrace is how long after a log file's delivery a digest may
// still list it: CloudTrail lists a file in the digest of the hour it was
// delivered in, written within the next hour.
const DefaultDigestGrace = 2 * time.Hour

// maxDigestObjectBytes bounds what is read of a digest object: gzip'd, a
// digest is a few hundred kilobytes at most.
const maxDigestObjectBytes = 16 << 20

// maxChainFetch is how many previous digests one digest's check may fetch
// and verify when they were not checked before: enough for a digest whose
// predecessor's notification is late, without walking a whole history
// (pgtrail backfill -digests does that).
const maxChainFetch = 2

// DigestVerifier checks CloudTrail digest files as validate-logs does,
// and records a verdict on each digest and on each log file it lists:
// signature, location, link to the previous digest (fetched and checked if
// pgtrail has not seen it), and each log file's hash against the one the
// ledger kept when the file was ingested.
type DigestVerifier struct {
	s3      S3
	store   DigestStore
	keys    DigestKeySource
	grace   time.Duration
	log     *zap.Logger
	metrics *Metrics
}

// NewDigestVerifier returns a DigestVerifier. grace ≤ 0 is
// DefaultDigestGrace.
func NewDigestVerifier(s3c S3, store DigestStore, keys DigestKeySource, grace time.Duration, m *Metrics, log *zap.Logger) *DigestVerifier {
	if grace <= 0 {
		grace = DefaultDigestGrace
	}
	return &DigestVerifier{s3: s3c, store: store, keys: keys, grace: grace, log: log, metrics: m}
}

// DigestOutcome is what checking one digest found.
type DigestOutcome struct {
	Record sink.DigestRecord
	Files  sink.DigestFiles
}

// Verify checks the digest at bucket and key and records its verdict. An
// invalid digest is a verdict, not an error; the error is for what a retry
// may mend (S3, the key source, the database), or a permanent one for a
// key that is no digest's or an object that is gone.
func (v *DigestVerifier) Verify(ctx context.Context, bucket, key string) (DigestOutcome, error) {
	return v.verify(ctx, bucket, key, 0)
}

func (v *DigestVerifier) verify(ctx context.Context, bucket, key string, depth int) (DigestOutcome, error) {
	dk, err := cloudtrail.ParseDigestKey(key)
	if err != nil {
		return DigestOutcome{}, retry.Permanent(err)
	}
	rec := sink.DigestRecord{Bucket: bucket, Key: key, Chain: dk.Chain(), End: dk.End}
	d, meta, err := v.fetch(ctx, bucket, key)
	if err != nil {
		return DigestOutcome{}, err
	}
	if d == nil {
		rec.Reason = cloudtrail.ErrDigestFormat.Error()
		return v.record(ctx, rec, nil, nil)
	}
	rec.Start, rec.End, rec.ChainStart = d.StartTime, d.EndTime, d.StartTime
	rec.HashValue, rec.LogFiles = d.Hash.String(), len(d.LogFiles)
	rec.Signature = meta[cloudtrail.DigestMetaSignature]

	keys, err := v.keys.DigestKeys(ctx, dk.HomeRegion, d.DigestPublicKeyFingerprint, d.StartTime, d.EndTime)
	if err != nil {
		return DigestOutcome{}, fmt.Errorf("digest s3://%s/%s: public keys: %w", bucket, key, err)
	}
	if err := cloudtrail.VerifyDigest(d, bucket, key, meta, keys); err != nil {
		rec.Reason = digestReason(err, dk.HomeRegion, d.DigestPublicKeyFingerprint)
		return v.record(ctx, rec, nil, nil)
	}
	if err := v.link(ctx, d, &rec, depth); err != nil {
		return DigestOutcome{}, err
	}
	return v.record(ctx, rec, d.LogFiles, v.sweep(dk, &rec))
}

// link checks d's link to the previous digest, fetching and checking that
// one first if pgtrail has no verdict on it, and sets rec's gap, chain
// start and, for a broken link, reason.
func (v *DigestVerifier) link(ctx context.Context, d *cloudtrail.Digest, rec *sink.DigestRecord, depth int) error {
	ref, ok := d.PreviousRef()
	if !ok {
		rec.GapBefore = true
		return nil
	}
	prev, found, err := v.store.Digest(ctx, ref.Bucket, ref.Object)
	if err != nil {
		return err
	}
	if !found && depth < maxChainFetch {
		out, err := v.verify(ctx, ref.Bucket, ref.Object, depth+1)
		switch {
		case err == nil:
			prev, found = out.Record, true
		case errors.Is(err, errDigestGone):
			// validate-logs: "Digest file s3://…/PREV INVALID: not found".
			return v.recordMissing(ctx, ref.Bucket, ref.Object)
		default:
			return err
		}
	}
	if found && prev.HashValue == "" {
		// The previous digest is missing or unreadable: that is its own
		// verdict, and there is nothing to compare this one's link with.
		return nil
	}
	if !found {
		v.log.Info("previous digest not checked; link left unchecked",
			zap.String(keyBucket, ref.Bucket), zap.String(keyKey, ref.Object))
		return nil
	}
	if err := cloudtrail.CheckDigestLink(d, prev.Ref()); err != nil {
		rec.Reason = cloudtrail.ErrDigestLink.Error()
		return nil
	}
	if prev.Valid {
		rec.ChainStart = prev.ChainStart
	}
	return nil
}

// recordMissing records the verdict on a digest that a newer one names as
// its previous but that is not in the bucket.
func (v *DigestVerifier) recordMissing(ctx context.Context, bucket, key string) error {
	dk, err := cloudtrail.ParseDigestKey(key)
	if err != nil {
		return retry.Permanent(fmt.Errorf("previous digest: %w", err))
	}
	rec := sink.DigestRecord{Bucket: bucket, Key: key, Chain: dk.Chain(), End: dk.End, Reason: cloudtrail.ErrDigestNotFound.Error()}
	_, err = v.record(ctx, rec, nil, nil)
	return err
}

// sweep returns the log files that rec's check should find unlisted: those
// its account and region's hourly chain should have listed by now, from
// the grace period before the digest's start (or the chain's start) to the
// grace period before its end. Backfill digests list no new files.
func (v *DigestVerifier) sweep(dk cloudtrail.DigestKey, rec *sink.DigestRecord) *sink.Sweep {
	if dk.Backfill {
		return nil
	}
	from, to := rec.Start.Add(-v.grace), rec.End.Add(-v.grace)
	if from.Before(rec.ChainStart) {
		from = rec.ChainStart
	}
	if to.Before(from) {
		return nil
	}
	folder := cloudtrail.LogFolder{Prefix: dk.Prefix, OrgID: dk.OrgID, AccountID: dk.AccountID, Region: dk.Region}
	return &sink.Sweep{Bucket: rec.Bucket, Prefixes: folder.DayPrefixes(from, to), From: from, To: to}
}

// record stores rec and counts it.
func (v *DigestVerifier) record(ctx context.Context, rec sink.DigestRecord, files []cloudtrail.DigestLogFile, sweep *sink.Sweep) (DigestOutcome, error) {
	rec.Valid = rec.Reason == ""
	out, err := v.store.RecordDigest(ctx, rec, files, sweep)
	if err != nil {
		return DigestOutcome{}, err
	}
	v.metrics.digestChecked(rec, out)
	log := v.log.With(zap.String(keyBucket, rec.Bucket), zap.String(keyKey, rec.Key))
	switch {
	case !rec.Valid:
		log.Error("digest invalid", zap.String("reason", rec.Reason))
	case out.Failed() > 0:
		log.Error("log files failed validation", zap.Any("files", map[string]int(out)))
	default:
		log.Debug("digest valid", zap.Bool("gap_before", rec.GapBefore), zap.Any("files", map[string]int(out)))
	}
	return DigestOutcome{Record: rec, Files: out}, nil
}

// errDigestGone is a digest object that S3 does not have.
var errDigestGone = errors.New("digest not found")

// fetch reads and parses the digest at bucket and key with its metadata.
// d is nil, with no error, for an object that is not a digest's format.
func (v *DigestVerifier) fetch(ctx context.Context, bucket, key string) (d *cloudtrail.Digest, meta map[string]string, err error) {
	out, err := v.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		err = classifyS3(err)
		if retry.IsPermanent(err) {
			err = retry.Permanent(fmt.Errorf("%w: %w", errDigestGone, err))
		}
		return nil, nil, fmt.Errorf("s3: get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxDigestObjectBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("s3: read s3://%s/%s: %w", bucket, key, err)
	}
	d, err = cloudtrail.ParseDigest(body)
	if err != nil {
		v.log.Warn("digest unreadable", zap.String(keyBucket, bucket), zap.String(keyKey, key), zap.Error(err))
		return nil, out.Metadata, nil
	}
	return d, out.Metadata, nil
}

// digestReason words a digest's failure as validate-logs does after
// INVALID:.
func digestReason(err error, region, fingerprint string) string {
	switch {
	case errors.Is(err, cloudtrail.ErrDigestMoved):
		return cloudtrail.ErrDigestMoved.Error()
	case errors.Is(err, cloudtrail.ErrDigestKeyNotFound):
		return fmt.Sprintf("%s in region %s for fingerprint %s", cloudtrail.ErrDigestKeyNotFound, region, fingerprint)
	case errors.Is(err, cloudtrail.ErrDigestSignature):
		return cloudtrail.ErrDigestSignature.Error()
	case errors.Is(err, cloudtrail.ErrDigestFormat):
		return cloudtrail.ErrDigestFormat.Error()
	}
	return err.Error()
}
