package sigma

import (
	"encoding/json"
	"testing"
)

// The benchmarks evaluate rule packs on the corpus's records in turn
// (realistic records, several sources, 855 of them) and report ns/event,
// and cpu-ns/event: the process's CPU time per event, which other work on
// a shared machine does not inflate as it does wall time.
//
//	go test -run '^$' -bench . ./sigma/

func BenchmarkMatchBuiltin(b *testing.B) {
	benchmarkMatch(b, Builtin())
}

// BenchmarkMatchSigmaHQ evaluates the built-in pack with SigmaHQ's
// CloudTrail rules of shared/sigma (28 evaluated), a pack the size of
// SigmaHQ's CloudTrail folder.
func BenchmarkMatchSigmaHQ(b *testing.B) {
	s, err := Load(BuiltinWord + "," + sharedDir(b, "sigma/cloudtrail"))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkMatch(b, s)
}

func benchmarkMatch(b *testing.B, s *Set) {
	recs := loadCorpus(b)
	matched := 0
	n := 0
	b.ReportAllocs()
	c0 := processCPU()
	for b.Loop() {
		r := &recs[n%len(recs)]
		matched += len(s.Match(r.source, r.name, r.raw))
		n++
	}
	b.ReportMetric(float64(processCPU()-c0)/float64(n), "cpu-ns/event")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
	b.ReportMetric(float64(matched)/float64(n), "matches/event")
}

// BenchmarkDecodeMap is what the Go Sigma libraries (sigma-go,
// go-sigma-rule-engine) need before they evaluate any rule: the record
// decoded into a map. It is the floor of their cost per event.
func BenchmarkDecodeMap(b *testing.B) {
	recs := loadCorpus(b)
	n := 0
	c0 := processCPU()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(recs[n%len(recs)].raw, &m); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(processCPU()-c0)/float64(n), "cpu-ns/event")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}
