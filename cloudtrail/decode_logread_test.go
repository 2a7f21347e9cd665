package cloudtrail_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/digesttest"
)

// TestDecoderLogRead checks that the decoder hashes what it inflates, as a
// digest lists it, whichever way the records are read, and through a
// reused decoder.
func TestDecoderLogRead(t *testing.T) {
	first := `{"Records":[{"eventID":"a","eventTime":"2026-01-01T00:00:00Z"}]}`
	second := `{"Records":[{"eventID":"b","eventTime":"2026-01-01T00:00:00Z"}]}`
	tests := []struct {
		name     string
		body     []byte
		ok       bool
		hash     string // of the first member
		trailing bool
	}{
		{"one member", gzipMembers(first), true, first, false},
		{"two members", gzipMembers(first, second), true, first, true},
		{"plain JSON", []byte(first), false, "", false},
	}
	dec, err := cloudtrail.NewDecoder(bytes.NewReader(gzipMembers(second)), cloudtrail.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		for _, entries := range []bool{false, true} {
			if err := dec.Reset(bytes.NewReader(tc.body)); err != nil {
				t.Fatal(err)
			}
			if _, ok := dec.LogRead(); ok {
				t.Errorf("%s: LogRead ok before the end", tc.name)
			}
			for {
				var err error
				if entries {
					var e cloudtrail.Entry
					err = dec.NextEntry(&e, "b", "k")
				} else {
					_, err = dec.Next()
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
			}
			read, ok := dec.LogRead()
			if ok != tc.ok {
				t.Fatalf("%s: LogRead ok = %v, want %v", tc.name, ok, tc.ok)
			}
			if !ok {
				continue
			}
			if want := cloudtrail.DigestHash(sha256.Sum256([]byte(tc.hash))); !read.Complete || read.Hash != want {
				t.Errorf("%s: hash %s complete %v, want %s", tc.name, read.Hash, read.Complete, want)
			}
			if read.Trailing != tc.trailing {
				t.Errorf("%s: trailing %v, want %v", tc.name, read.Trailing, tc.trailing)
			}
		}
	}
}

// TestDecoderLogReadDigestTest checks the decoder's hash against the hash a
// signed digest lists for a log file.
func TestDecoderLogReadDigestTest(t *testing.T) {
	tr := &digesttest.Trail{Bucket: "b", AccountID: "111122223333", Region: "eu-west-1", Name: "t", HomeRegion: "eu-west-1"}
	log := tr.LogFile(mustTime(t, "2026-01-01T00:10:00Z"))
	d := tr.Digest(mustTime(t, "2026-01-01T01:00:00Z"), log)
	digest, err := cloudtrail.ParseDigest(d.Body)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cloudtrail.NewDecoder(bytes.NewReader(log.Body), cloudtrail.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		var e cloudtrail.Entry
		if err := dec.NextEntry(&e, log.Bucket, log.Key); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	read, _ := dec.LogRead()
	if v := cloudtrail.CheckDigestLogFile(digest.LogFiles[0], &read); v != cloudtrail.DigestLogValid {
		t.Errorf("verdict %s, want valid", v)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
