package backfill_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/backfill"
	"github.com/pgtrail/pgtrail/digestkeys"
	"github.com/pgtrail/pgtrail/internal/digesttest"
	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/worker"
)

// TestBackfillDigests: with Digests, a backfill checks the digest files of
// its range after the log files, each chain in order: an hourly chain and a
// backfill-digest chain of signed test digests verify, their log files are
// verified against what was loaded, and a log file no digest lists is
// found. Without Digests, no digest is read.
func TestBackfillDigests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := localaws.Shared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOf(t, &world{aws: s})
	bucket := localaws.UniqueName("digests")
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	hour := func(n int) time.Time { return day(0).Add(time.Duration(n) * time.Hour) }
	hourly := &digesttest.Trail{Bucket: bucket, AccountID: "666666666666", Region: "eu-west-1", Name: "main", HomeRegion: "eu-west-1"}
	filled := &digesttest.Trail{Bucket: bucket, AccountID: "666666666666", Region: "eu-west-1", Name: "main", HomeRegion: "eu-west-1", Backfill: true}
	var objs, logs, digests []digesttest.Object
	for h := range 4 {
		l := hourly.LogFile(hour(h).Add(10 * time.Minute))
		logs = append(logs, l)
		digests = append(digests, hourly.Digest(hour(h+1), l))
	}
	extra := hourly.LogFile(hour(0).Add(30 * time.Minute)) // listed by no digest
	older := filled.LogFile(hour(5).Add(5 * time.Minute))
	digests = append(digests, filled.Digest(hour(6), older), filled.Digest(hour(7)))
	objs = append(append(append(objs, logs...), extra, older), digests...)
	for _, o := range objs {
		if _, err := s.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(o.Key),
			Body: bytes.NewReader(o.Body), Metadata: o.Metadata}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := digestkeys.LoadDir(digesttest.TestKey().KeyDir(t, false))
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	e.proc.SetDigestVerifier(worker.NewDigestVerifier(e.s3, e.pg, keys, time.Hour, nil, log))
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := e.pg.Pool().QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	cfg := backfill.Config{Bucket: bucket, From: day(0), To: day(0)}
	if _, err := backfill.Run(ctx, cfg, backfill.Deps{S3: e.s3, Ledger: e.pg, Processor: e.proc}); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM cloudtrail_digests`); n != 0 {
		t.Errorf("without Digests: %d digests checked", n)
	}
	cfg.Digests = true
	sum, err := backfill.Run(ctx, cfg, backfill.Deps{S3: e.s3, Ledger: e.pg, Processor: e.proc})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 || sum.Done != int64(len(digests)) {
		t.Errorf("done %d, failed %d (%q), want %d digests done", sum.Done, sum.Failed, sum.Failures, len(digests))
	}
	for _, c := range []struct {
		what string
		q    string
		want int
	}{
		{"valid hourly digests", `SELECT count(*) FROM cloudtrail_digests WHERE verdict = 'valid' AND chain = 'normal'`, 4},
		{"valid backfill digests", `SELECT count(*) FROM cloudtrail_digests WHERE verdict = 'valid' AND chain = 'backfill'`, 2},
		{"chain starts", `SELECT count(*) FROM cloudtrail_digests WHERE gap_before`, 2},
		{"verified log files", `SELECT count(*) FROM cloudtrail_digest_files WHERE verdict = 'verified'`, 5},
		{"the unlisted log file", `SELECT count(*) FROM cloudtrail_digest_files WHERE verdict = 'not_listed' AND s3_key = '` + extra.Key + `'`, 1},
		{"other verdicts", `SELECT count(*) FROM cloudtrail_digest_files WHERE verdict NOT IN ('verified', 'not_listed')`, 0},
	} {
		if n := count(c.q); n != c.want {
			t.Errorf("%s: %d, want %d", c.what, n, c.want)
		}
	}
}
