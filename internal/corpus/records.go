package corpus

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Records calls fn with the records of every .json.gz object below dir, in
// the lexical order of their paths, read with encoding/json: the plain
// reader that tests check pgtrail's own decoder against. rel is the
// object's path below dir, with slashes. A file that is not gzip'd JSON is
// an error naming it; one without a Records member gives none.
func Records(dir string, fn func(rel string, records []json.RawMessage) error) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json.gz") {
			return err
		}
		records, err := readRecords(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), records)
	})
}

func readRecords(path string) ([]json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var doc struct{ Records []json.RawMessage }
	if err := json.NewDecoder(zr).Decode(&doc); err != nil {
		return nil, err
	}
	return doc.Records, nil
}
