// Package corpus finds the shared CloudTrail test corpus: real records from
// public projects, raw and re-packed in the S3 layout CloudTrail writes. It
// sits beside the repository, in shared/corpus.
package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Find returns the corpus root (the folder holding raw/ and s3/):
// PGTRAIL_CORPUS when set, else the first shared/corpus found in the working
// directory or one of its parents. It returns "" when there is none.
func Find() string {
	if dir := os.Getenv("PGTRAIL_CORPUS"); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "shared", "corpus")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// Dir returns the corpus root, or skips the test when there is none.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir := Find()
	if dir == "" {
		tb.Skip("CloudTrail corpus not found: no shared/corpus in the working directory or above (set PGTRAIL_CORPUS)")
	}
	return dir
}
