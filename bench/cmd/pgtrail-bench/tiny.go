package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgtrail/pgtrail/bench/gen"
)

// tinyObjects is how many objects of tiny records pgtrail run is given at
// once: PGTRAIL_OBJECT_CONCURRENCY's default, so that all of them are
// decoded together.
const tinyObjects = 8

// Targets for the peak RSS of the tiny-record measurements: what the
// README promises for any shape of object.
const (
	tinyIngestTargetMB = 150
	tinyRunTargetMB    = 400
)

// tinySet is tinyObjects files of o.tiny tiny records each (gen.WriteTiny),
// on disk for ingest and in the local S3 for run.
type tinySet struct {
	dir     string
	paths   []string
	keys    []string
	records int // per object
	comp    int64
	raw     int64
}

func makeTiny(ctx context.Context, o options, st *awsStack) (*tinySet, error) {
	dir, err := os.MkdirTemp("", "pgtrail-bench-tiny-")
	if err != nil {
		return nil, err
	}
	ts := &tinySet{dir: dir, records: o.tiny}
	for i := range tinyObjects {
		name := fmt.Sprintf("111122223333_CloudTrail_us-east-1_20240301T0000Z_tiny%d.json.gz", i)
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return ts, err
		}
		raw, err := gen.WriteTiny(f, uint64(i+1), o.tiny)
		if err == nil {
			_, err = f.Seek(0, 0)
		}
		if err != nil {
			f.Close()
			return ts, err
		}
		fi, _ := f.Stat()
		key := "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/" + name
		_, err = st.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(st.bucket), Key: aws.String(key), Body: f})
		f.Close()
		if err != nil {
			return ts, fmt.Errorf("upload: %w", err)
		}
		ts.paths = append(ts.paths, path)
		ts.keys = append(ts.keys, key)
		ts.comp += fi.Size()
		ts.raw += raw
	}
	fmt.Printf("tiny records: %d objects of %d records, %.1f MB gz and %.1f MB raw each\n",
		tinyObjects, o.tiny, mb(ts.comp)/tinyObjects, mb(ts.raw)/tinyObjects)
	return ts, nil
}

func (ts *tinySet) remove() { os.RemoveAll(ts.dir) }

// runTiny measures the peak memory that objects of many tiny records cost:
// one through pgtrail ingest, and tinyObjects of them at once through
// pgtrail run.
func runTiny(ctx context.Context, o options, st *awsStack, ts *tinySet) ([]Measurement, error) {
	per := float64(ts.records) / 1000
	mi := Measurement{Name: fmt.Sprintf("tiny %.0fk ingest", per), Events: ts.records}
	if err := ingestDir(ctx, o, ts.paths[0], ts.records, &mi); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	rate(&mi, time.Duration(mi.Seconds*float64(time.Second)), ts.comp/tinyObjects, ts.raw/tinyObjects)
	mi.Note = fmt.Sprintf("one object; target under %d MB", tinyIngestTargetMB)

	all := tinyObjects * ts.records
	mr := Measurement{Name: fmt.Sprintf("tiny %d×%.0fk run", tinyObjects, per), Concurrency: tinyObjects, Events: all}
	if err := runQueue(ctx, o, st, ts.keys, tinyObjects, all, &mr); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	rate(&mr, time.Duration(mr.Seconds*float64(time.Second)), ts.comp, ts.raw)
	mr.Note = fmt.Sprintf("%d objects at once; target under %d MB", tinyObjects, tinyRunTargetMB)
	return []Measurement{mi, mr}, nil
}

// measureTiny runs runTiny o.repeat times (in turn with -baseline, if
// given) and keeps the medians in res.
func measureTiny(ctx context.Context, o options, st *awsStack, res *Results) error {
	ts, err := makeTiny(ctx, o, st)
	defer ts.remove()
	if err != nil {
		return err
	}
	var runs, base [][]Measurement
	for range max(o.repeat, 1) {
		ms, err := runTiny(ctx, o, st, ts)
		if err != nil {
			return err
		}
		for _, m := range ms {
			fmt.Println(m)
		}
		runs = append(runs, ms)
		if o.baseline == "" {
			continue
		}
		ob := o
		ob.bin = o.baseline
		bs, err := runTiny(ctx, ob, st, ts)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		for i := range bs {
			bs[i].Name += " baseline"
			fmt.Println(bs[i])
		}
		base = append(base, bs)
	}
	res.Tiny = medians(runs)
	res.TinyBaseline = medians(base)
	if len(runs) > 1 {
		fmt.Printf("medians of %d runs:\n", len(runs))
		for i, m := range res.Tiny {
			fmt.Println(m)
			if i < len(res.TinyBaseline) {
				fmt.Println(res.TinyBaseline[i])
			}
		}
	}
	return nil
}

// medians returns, for each measurement of the runs, its median by
// events/s.
func medians(runs [][]Measurement) []Measurement {
	if len(runs) == 0 {
		return nil
	}
	out := make([]Measurement, len(runs[0]))
	for i := range out {
		var ms []Measurement
		for _, r := range runs {
			ms = append(ms, r[i])
		}
		out[i] = median(ms)
	}
	return out
}
