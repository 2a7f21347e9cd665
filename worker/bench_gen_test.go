package worker

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/bench/gen"
)

// BenchmarkGenerated decodes (gunzip and scan) and normalizes the data set
// that pgtrail-bench uses, generated: ~1.3 KB records, 50-200 per object.
func BenchmarkGenerated(b *testing.B) {
	set := gen.Generate(gen.Config{Seed: 1, Events: 20_000})
	for _, mode := range []string{"Decode", "DecodeNormalize", "NextRow"} {
		normalize := mode == "DecodeNormalize"
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(set.Raw)
			dec, _ := NewDecoder(bytes.NewReader(set.Objects[0].Body), Limits{})
			for b.Loop() {
				for _, o := range set.Objects {
					if err := dec.Reset(bytes.NewReader(o.Body)); err != nil {
						b.Fatal(err)
					}
					for mode == "NextRow" {
						var row Row
						err := dec.NextRow(&row, "bucket", o.Key)
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if row.Reject != nil {
							b.Fatal(row.Reject.Reason)
						}
					}
					for mode != "NextRow" {
						raw, err := dec.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if normalize {
							if _, err := Normalize(raw, "bucket", o.Key); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(set.Records), "ns/record")
		})
	}
}

// nopSink reads every row of every object, and stores nothing.
type nopSink struct{}

func (nopSink) Write(_ context.Context, objs []*Object) ([]WriteResult, error) {
	res := make([]WriteResult, len(objs))
	for i, o := range objs {
		var row Row
		for o.Rows.Next(&row) == nil {
			res[i].Events++
		}
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
					if _, err := p.write(ctx, &Object{Key: strconv.Itoa(i)}, bytes.NewReader(body), nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.records), "ns/record")
		})
	}
}
