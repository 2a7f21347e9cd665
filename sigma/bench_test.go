package sigma

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
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

// benchmarkMatch runs the set on the corpus as it is, and on the same
// records with their top-level keys in the order CloudTrail writes them:
// the corpus's stratus-red-team and panther-analysis records had theirs
// sorted by their exporters, which puts userIdentity last.
//
// The events sub-benchmarks are what pgtrail runs: MatchEvent on the
// events cloudtrail.Normalize made of the records (736 of the 855: it
// rejects the rest, which no rule then sees), starting from the members
// Normalize found. The records ones are Match on every record alone, the
// record's top level read by the rules.
func benchmarkMatch(b *testing.B, s *Set) {
	recs := loadCorpus(b)
	ordered := make([]corpusRecord, len(recs))
	for i, r := range recs {
		ordered[i] = r
		ordered[i].raw = cloudTrailOrder(b, r.raw)
	}
	b.Run("events", func(b *testing.B) { benchmarkEvents(b, s, normalizeAll(recs)) })
	b.Run("events-cloudtrail-key-order", func(b *testing.B) { benchmarkEvents(b, s, normalizeAll(ordered)) })
	b.Run("records", func(b *testing.B) { benchmarkRecords(b, s, recs) })
	b.Run("records-cloudtrail-key-order", func(b *testing.B) { benchmarkRecords(b, s, ordered) })
}

// normalizeAll returns the events Normalize makes of recs.
func normalizeAll(recs []corpusRecord) []cloudtrail.Event {
	var evs []cloudtrail.Event
	for _, r := range recs {
		if ev, err := cloudtrail.Normalize(r.raw, "bucket", r.file); err == nil {
			evs = append(evs, ev)
		}
	}
	return evs
}

func benchmarkEvents(b *testing.B, s *Set, evs []cloudtrail.Event) {
	if len(evs) == 0 {
		b.Fatal("no events")
	}
	matched := 0
	n := 0
	b.ReportAllocs()
	c0 := processCPU()
	for b.Loop() {
		matched += len(s.MatchEvent(&evs[n%len(evs)]))
		n++
	}
	reportMatch(b, c0, n, matched)
}

func benchmarkRecords(b *testing.B, s *Set, recs []corpusRecord) {
	matched := 0
	n := 0
	b.ReportAllocs()
	c0 := processCPU()
	for b.Loop() {
		r := &recs[n%len(recs)]
		matched += len(s.Match(r.source, r.name, r.raw))
		n++
	}
	reportMatch(b, c0, n, matched)
}

func reportMatch(b *testing.B, c0 time.Duration, n, matched int) {
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

// cloudTrailKeys is the order of a record's top-level fields as CloudTrail
// writes them.
var cloudTrailKeys = []string{"eventVersion", "userIdentity", "eventTime", "eventSource", "eventName",
	"awsRegion", "sourceIPAddress", "userAgent", "errorCode", "errorMessage", "requestParameters",
	"responseElements", "additionalEventData", "requestID", "eventID", "readOnly", "resources",
	"eventType", "apiVersion", "managementEvent", "recipientAccountId", "serviceEventDetails",
	"sharedEventID", "vpcEndpointId", "vpcEndpointAccountId", "eventCategory", "addendum",
	"sessionCredentialFromConsole", "edgeDeviceDetails", "tlsDetails", "insightDetails"}

// cloudTrailOrder returns raw with its top-level members in CloudTrail's
// order (others after them, sorted), their values untouched.
func cloudTrailOrder(tb testing.TB, raw []byte) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	out := []byte{'{'}
	add := func(k string) {
		v, ok := m[k]
		if !ok {
			return
		}
		delete(m, k)
		if len(out) > 1 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(k)
		out = append(append(append(out, kb...), ':'), v...)
	}
	for _, k := range cloudTrailKeys {
		add(k)
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	for _, k := range rest {
		add(k)
	}
	return append(out, '}')
}
