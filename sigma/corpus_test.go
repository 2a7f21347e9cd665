package sigma

import (
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pgtrail/pgtrail/internal/corpus"
)

// corpusRecord is one record of the shared corpus, as the worker would
// hand it to Match.
type corpusRecord struct {
	source, name string
	raw          []byte
	// file is the object's path under s3/, from its source folder on.
	file string
}

var (
	corpusOnce    sync.Once
	corpusRecords []corpusRecord
	corpusErr     error
)

// loadCorpus returns every record of the corpus's s3/ tree, in a stable
// order, or skips the test when there is no corpus.
func loadCorpus(tb testing.TB) []corpusRecord {
	tb.Helper()
	root := filepath.Join(corpus.Dir(tb), "s3")
	corpusOnce.Do(func() { corpusRecords, corpusErr = readCorpus(root) })
	if corpusErr != nil {
		tb.Fatalf("corpus: %v", corpusErr)
	}
	return corpusRecords
}

func readCorpus(root string) ([]corpusRecord, error) {
	var out []corpusRecord
	err := corpus.Records(root, func(rel string, records []json.RawMessage) error {
		for _, raw := range records {
			var names struct {
				EventSource, EventName string
				InsightDetails         struct{ EventSource, EventName string }
			}
			_ = json.Unmarshal(raw, &names) // a field of another type leaves the name empty
			if names.EventName == "" {
				names.EventSource, names.EventName = names.InsightDetails.EventSource, names.InsightDetails.EventName
			}
			out = append(out, corpusRecord{source: names.EventSource, name: names.EventName, raw: raw, file: rel})
		}
		return nil
	})
	return out, err
}
