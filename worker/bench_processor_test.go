package worker

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// nopSink reads every entry of every object, and stores nothing.
type nopSink struct{}

func (nopSink) WriteBuffered(_ context.Context, objs []*sink.BufferedObject) ([]sink.WriteResult, error) {
	res := make([]sink.WriteResult, len(objs))
	for i, o := range objs {
		res[i].Events = len(o.Entries)
	}
	return res, nil
}

func (nopSink) WriteStreamed(_ context.Context, obj *sink.StreamedObject) (sink.WriteResult, error) {
	var res sink.WriteResult
	var e cloudtrail.Entry
	for obj.Entries.Next(&e) == nil {
		res.Events++
	}
	return res, nil
}

// BenchmarkProcessorWrite runs objects through the processor's own part of
// the write, decode to batcher, into a sink that stores nothing, one object
// after another: the generated data set (decoded whole), and one object of
// 100,000 tiny records (streamed).
func BenchmarkProcessorWrite(b *testing.B) {
	set := gen.Generate(gen.Config{Seed: 1, Events: 20_000})
	var tiny bytes.Buffer
	if _, err := gen.WriteTiny(&tiny, 1, 100_000); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		bodies  [][]byte
		records int
	}{
		{"generated", nil, set.Records},
		{"tiny", [][]byte{tiny.Bytes()}, 100_000},
	} {
		if c.bodies == nil {
			for _, o := range set.Objects {
				c.bodies = append(c.bodies, o.Body)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			p := NewProcessor(Config{}, nil, nopSink{}, nil, nil, zap.NewNop())
			ctx := context.Background()
			for b.Loop() {
				for i, body := range c.bodies {
					if _, err := p.write(ctx, &sink.Object{Key: strconv.Itoa(i)}, bytes.NewReader(body), nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.records), "ns/record")
		})
	}
}
