package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
)

// benchEvents returns n generated events, normalized, grouped in objects.
func benchEvents(b *testing.B, n int, dup float64) (objs [][]cloudtrail.Entry, events int) {
	b.Helper()
	set := gen.Generate(gen.Config{Seed: 3, Events: n, DupShare: dup})
	for _, o := range set.Objects {
		dec, err := cloudtrail.NewDecoder(bytes.NewReader(o.Body), cloudtrail.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		var rows []cloudtrail.Entry
		for {
			raw, err := dec.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			ev, err := cloudtrail.Normalize(raw, "bucket", o.Key)
			if err != nil {
				b.Fatal(err)
			}
			rows = append(rows, cloudtrail.Entry{Event: ev})
		}
		objs = append(objs, rows)
		events += len(rows)
	}
	return objs, events
}

// BenchmarkEncodeEvents is the client's cost of the binary COPY stream.
func BenchmarkEncodeEvents(b *testing.B) {
	objs, n := benchEvents(b, 20_000, 0)
	var evs []cloudtrail.Event
	for _, o := range objs {
		for _, r := range o {
			evs = append(evs, r.Event)
		}
	}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = sink.EncodeEvents(buf[:0], evs, true)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
}

// BenchmarkWrite writes batches of buffered objects (about 5,000 events per
// transaction, as the processor batches them) into a fresh database, with
// no duplicates and with a second trail's share of them, and through the
// staging path that a streamed object takes.
func BenchmarkWrite(b *testing.B) {
	for _, c := range []struct {
		name     string
		dup      float64
		buffered bool
	}{
		{"copy/dup=0", 0, true},
		{"copy/dup=0.1", 0.1, true},
		{"copy/dup=0.5", 0.5, true},
		{"staged/dup=0", 0, false},
		{"staged/dup=0.5", 0.5, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			objs, n := benchEvents(b, 50_000, c.dup)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				pg, err := sink.Open(ctx, sink.Config{URL: pgtest.New(b), MaxConns: 4}, zap.NewNop())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pg.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				var batch []*testObject
				rows := 0
				flush := func() {
					if _, err := write(ctx, pg, batch); err != nil {
						b.Fatal(err)
					}
					batch, rows = batch[:0], 0
				}
				for i, o := range objs {
					obj := &testObject{Bucket: "bucket", Key: fmt.Sprint(i), Entries: o}
					if !c.buffered {
						obj.Stream = &streamRows{items: o}
					}
					batch = append(batch, obj)
					rows += len(o)
					if rows >= 5000 {
						flush()
					}
				}
				if len(batch) > 0 {
					flush()
				}
				b.StopTimer()
				pg.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// streamRows streams a slice, so that Write takes the staging path.
type streamRows struct{ items []cloudtrail.Entry }

func (r *streamRows) Next(row *cloudtrail.Entry) error {
	if len(r.items) == 0 {
		return io.EOF
	}
	*row = r.items[0]
	r.items = r.items[1:]
	return nil
}

// BenchmarkProbe asks which of 5,000 keys are stored (half are, over the
// three days of the generated data; probeAll of a batch) and which of 60
// (two per object of a batch; probeSample), among 50,000 events, as the
// buffered path's probe does, in the correlated form pgtrail used before
// and as the writer does now (probeEvents, matched in Go), which Citus can
// plan. The two alternate, three times, on the same database.
func BenchmarkProbe(b *testing.B) {
	objs, _ := benchEvents(b, 50_000, 0)
	ctx := context.Background()
	pg, err := sink.Open(ctx, sink.Config{URL: pgtest.New(b), MaxConns: 4}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var ids []string
	var times []time.Time
	for i, o := range objs {
		if _, err := write(ctx, pg, []*testObject{{Bucket: "bucket", Key: fmt.Sprint(i), Entries: o}}); err != nil {
			b.Fatal(err)
		}
		for j, r := range o {
			if len(ids) < 5000 && (i+j)%10 == 0 {
				id := r.Event.EventID
				if j%2 == 1 {
					id += "-new"
				}
				ids, times = append(ids, id), append(times, r.Event.EventTime)
			}
		}
	}
	if _, err := pg.Pool().Exec(ctx, `VACUUM ANALYZE cloudtrail_events`); err != nil {
		b.Fatal(err)
	}
	for round := range 3 {
		for _, n := range []int{5000, 60} {
			keys, at := ids[:n], times[:n]
			for _, c := range []struct {
				name  string
				probe func() (int, error)
			}{
				{"correlated", func() (int, error) {
					// In a transaction, as ProbeStored and the writer run it.
					tx, err := pg.Pool().Begin(ctx)
					if err != nil {
						return 0, err
					}
					defer tx.Rollback(ctx) //nolint:errcheck // read only
					rows, err := tx.Query(ctx, correlatedProbe, keys, at)
					if err != nil {
						return 0, err
					}
					found, err := pgx.CollectRows(rows, pgx.RowTo[int])
					return len(found), err
				}},
				{"ids", func() (int, error) {
					found, err := pg.ProbeStored(ctx, keys, at)
					return len(found), err
				}},
			} {
				b.Run(fmt.Sprintf("keys=%d/%s/round=%d", n, c.name, round+1), func(b *testing.B) {
					found := 0
					for b.Loop() {
						var err error
						if found, err = c.probe(); err != nil {
							b.Fatal(err)
						}
					}
					if found == 0 || found == len(keys) {
						b.Fatalf("%d of %d keys found stored", found, len(keys))
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/key")
				})
			}
		}
	}
}
