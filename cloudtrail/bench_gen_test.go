package cloudtrail

import (
	"bytes"
	"io"
	"testing"

	"github.com/pgtrail/pgtrail/bench/gen"
)

// BenchmarkGenerated decodes (gunzip and scan) and normalizes the data set
// that pgtrail-bench uses, generated: ~1.3 KB records, 50-200 per object.
func BenchmarkGenerated(b *testing.B) {
	set := gen.Generate(gen.Config{Seed: 1, Events: 20_000})
	for _, mode := range []string{"Decode", "DecodeNormalize", "NextEntry"} {
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
					for mode == "NextEntry" {
						var row Entry
						err := dec.NextEntry(&row, "bucket", o.Key)
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
					for mode != "NextEntry" {
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
