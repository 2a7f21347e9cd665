package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeGz(t *testing.T, path, body string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(body))
	zw.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRecords(t *testing.T) {
	dir := t.TempDir()
	writeGz(t, filepath.Join(dir, "b", "2.json.gz"), `{"Records":[{"eventID":"3"}]}`)
	writeGz(t, filepath.Join(dir, "a", "1.json.gz"), `{"Records":[{"eventID":"1"},{"eventID":"2"}]}`)
	writeGz(t, filepath.Join(dir, "a", "digest.json.gz"), `{"digestStartTime":"x"}`)
	if err := os.WriteFile(filepath.Join(dir, "a", "notes.txt"), []byte("not read"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := Records(dir, func(rel string, records []json.RawMessage) error {
		for _, r := range records {
			got = append(got, rel+" "+string(r))
		}
		if len(records) == 0 {
			got = append(got, rel+" none")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`a/1.json.gz {"eventID":"1"}`, `a/1.json.gz {"eventID":"2"}`, `a/digest.json.gz none`, `b/2.json.gz {"eventID":"3"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	writeGz(t, filepath.Join(dir, "c", "bad.json.gz"), `{"Records":[`)
	err = Records(dir, func(string, []json.RawMessage) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "bad.json.gz") {
		t.Fatalf("a truncated object: %v, want an error naming it", err)
	}
}
