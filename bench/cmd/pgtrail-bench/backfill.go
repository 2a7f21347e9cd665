package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/localaws"
)

// backfillRates are the -s3-rate values pgtrail backfill is measured with:
// its default cap of 200 requests per second, and no cap, which is
// pgtrail's own limit.
var backfillRates = []float64{200, 0}

// measureBackfill loads the data set's log files from a bucket of their
// own in the local S3 with pgtrail backfill: once per backfillRates into a
// fresh database, then once more over the last one, where every object is
// already stored and only the listing and the ledger look-ups are left.
//
// The second trail's copies (gen's Dup objects, under org/) are not in the
// bucket: a backfill lists one trail's prefix, so the figures are those of
// one trail's history, every event new.
func measureBackfill(ctx context.Context, o options, st *awsStack, set *gen.Set) ([]Measurement, error) {
	bucket := localaws.UniqueName("bench-backfill")
	if err := st.CreateBucket(ctx, bucket); err != nil {
		return nil, err
	}
	var objs []gen.Object
	var events int
	var comp, raw int64
	var first, last time.Time
	for _, ob := range set.Objects {
		if ob.Dup {
			continue
		}
		k, ok := cloudtrail.ParseKey(ob.Key)
		if !ok || k.Kind != cloudtrail.KeyLog {
			return nil, fmt.Errorf("generated key %s is not a CloudTrail log file's", ob.Key)
		}
		if first.IsZero() || k.Day.Before(first) {
			first = k.Day
		}
		if k.Day.After(last) {
			last = k.Day
		}
		objs = append(objs, ob)
		events += ob.Records
		comp += int64(len(ob.Body))
		raw += ob.Raw
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, ob := range objs {
		g.Go(func() error {
			_, err := st.S3().PutObject(gctx, &s3.PutObjectInput{
				Bucket: aws.String(bucket), Key: aws.String(ob.Key), Body: bytes.NewReader(ob.Body)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}

	env := func(dbURL string) []string {
		return []string{
			"DATABASE_URL=" + dbURL,
			"AWS_ENDPOINT_URL=" + st.Endpoint, "AWS_REGION=" + st.Region,
			"AWS_ACCESS_KEY_ID=" + localaws.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + localaws.SecretAccessKey,
			"S3_FORCE_PATH_STYLE=true",
		}
	}
	args := func(rps float64) []string {
		return []string{"backfill", "-bucket", bucket,
			"-from", first.Format(time.DateOnly), "-to", last.Format(time.DateOnly),
			"-s3-rate", strconv.FormatFloat(rps, 'f', -1, 64)}
	}
	var ms []Measurement
	var again Measurement
	for i, rps := range backfillRates {
		dbURL, conn, done, err := freshDB(ctx, o.server)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("backfill s3-rate=%g", rps)
		if rps == 0 {
			name = "backfill s3-rate=none"
		}
		m := Measurement{Name: name, Events: events}
		meter := startServerMeter()
		_, err = runChild(o, env(dbURL), args(rps), &m)
		if err == nil {
			m.DBCPUSecPerM = meter.perMillion(events)
			err = checkStored(ctx, conn, events)
		}
		if err == nil && i == len(backfillRates)-1 {
			// Again, over what is now stored: nothing is read.
			again = Measurement{Name: "backfill again, all stored", Events: events}
			var out string
			if out, err = runChild(o, env(dbURL), args(0), &again); err == nil {
				err = checkSkipped(out, len(objs))
			}
		}
		done()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rate(&m, time.Duration(m.Seconds*float64(time.Second)), comp, raw)
		m.ObjectsPerS = float64(len(objs)) / m.Seconds
		ms = append(ms, m)
	}
	// Nothing was read: only the objects per second say something.
	again.ObjectsPerS = float64(len(objs)) / again.Seconds
	again.Events, again.CPUSecPerM = 0, 0
	return append(ms, again), nil
}

// checkSkipped checks, from pgtrail backfill's summary, that every one of
// n objects was found in range and skipped as already stored.
func checkSkipped(out string, n int) error {
	for _, l := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(l, "objects: ")
		if !ok {
			continue
		}
		var listed, bytes, stored int
		if _, err := fmt.Sscanf(rest, "%d in range (%d bytes), %d already stored", &listed, &bytes, &stored); err != nil {
			return fmt.Errorf("backfill summary %q: %w", l, err)
		}
		if listed != n || stored != n {
			return fmt.Errorf("backfill again: %d objects listed and %d already stored, want %d and %d", listed, stored, n, n)
		}
		return nil
	}
	return fmt.Errorf("no objects line in the backfill summary:\n%s", tail(out, 20))
}

// runChild runs one pgtrail command to its end, fills m's time, CPU and
// memory, and returns what the command printed.
func runChild(o options, env, args []string, m *Measurement) (string, error) {
	c, err := startChild(o, env, args...)
	if err != nil {
		return "", err
	}
	if err := c.cmd.Wait(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, tail(c.stderr.String(), 20))
	}
	m.Seconds = time.Since(c.start).Seconds()
	c.finish(m)
	return c.stderr.String(), nil
}
