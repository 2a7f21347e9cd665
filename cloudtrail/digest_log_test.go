package cloudtrail_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/digesttest"
)

func TestDigestHasher(t *testing.T) {
	var h cloudtrail.DigestHasher
	if h.Sum() != sha256.Sum256(nil) {
		t.Error("zero DigestHasher does not sum to the hash of nothing")
	}
	data := bytes.Repeat([]byte(`{"eventName":"GetObject"},`), 5000)
	// Behind a TeeReader, on the path that already reads the data.
	if _, err := io.Copy(io.Discard, io.TeeReader(bytes.NewReader(data), &h)); err != nil {
		t.Fatal(err)
	}
	if h.Sum() != sha256.Sum256(data) {
		t.Error("TeeReader into DigestHasher: wrong hash")
	}
	h.Reset()
	h.Write(data[:10])
	h.Write(data[10:])
	if h.Sum() != sha256.Sum256(data) {
		t.Error("after Reset, two writes: wrong hash")
	}
}

// gzipMembers gzips each part as a member of its own, one after another.
func gzipMembers(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, digesttest.Gzip([]byte(p))...)
	}
	return b
}

func TestDigestLogReader(t *testing.T) {
	first, second := `{"Records":[{"a":1}]}`, `{"Records":[{"b":2}]}`
	tests := []struct {
		name     string
		body     []byte
		want     string // what reading gives; * for anything
		readErr  error
		complete bool
		trailing bool
		verdict  cloudtrail.DigestLogVerdict
	}{
		{"one member", gzipMembers(first), first, nil, true, false, cloudtrail.DigestLogValid},
		{"second member", gzipMembers(first, second), first + second, nil, true, true, cloudtrail.DigestLogTrailingData},
		{"garbage after", append(gzipMembers(first), "garbage!!!!!"...), first, kgzip.ErrHeader, true, true, cloudtrail.DigestLogTrailingData},
		{"one byte after", append(gzipMembers(first), 0), first, io.ErrUnexpectedEOF, true, true, cloudtrail.DigestLogTrailingData},
		{"truncated", gzipMembers(first)[:20], "*", io.ErrUnexpectedEOF, false, false, cloudtrail.DigestLogInvalidFormat},
		{"bad crc", badCRC(gzipMembers(first)), first, kgzip.ErrChecksum, false, false, cloudtrail.DigestLogInvalidFormat},
	}
	listed := cloudtrail.DigestLogFile{HashValue: cloudtrail.DigestHash(sha256.Sum256([]byte(first))).String()}
	var reused cloudtrail.DigestLogReader
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, l := range []*cloudtrail.DigestLogReader{nil, &reused} {
				var err error
				if l == nil {
					l, err = cloudtrail.NewDigestLogReader(bytes.NewReader(tt.body))
				} else {
					err = l.Reset(bytes.NewReader(tt.body))
				}
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(l)
				if !errors.Is(err, tt.readErr) || (err == nil) != (tt.readErr == nil) {
					t.Errorf("read error %v, want %v", err, tt.readErr)
				}
				if string(got) != tt.want && tt.want != "*" {
					t.Errorf("read %q, want %q", got, tt.want)
				}
				r := l.Result()
				if r.Complete != tt.complete || r.Trailing != tt.trailing {
					t.Errorf("Result() = %+v, want complete %v, trailing %v", r, tt.complete, tt.trailing)
				}
				if v := cloudtrail.CheckDigestLogFile(listed, &r); v != tt.verdict {
					t.Errorf("verdict %v, want %v", v, tt.verdict)
				}
			}
		})
	}
}

// badCRC changes the CRC-32 in a gzip member's trailer.
func badCRC(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-8] ^= 0xff
	return b
}

// TestDigestLogReaderReadsAsGzip checks that DigestLogReader gives what
// the multi-member gzip reader of the ingest path gives, and reads through
// a caller's bufio.Reader without over-reading it.
func TestDigestLogReaderReadsAsGzip(t *testing.T) {
	body := gzipMembers(`{"Records":[`, `{"x":1}`, `]}`)
	zr, err := kgzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(bytes.NewReader(body), 16)
	l, err := cloudtrail.NewDigestLogReader(br)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(l)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %q, %v; the gzip reader reads %q", got, err, want)
	}
	if r := l.Result(); r.Hash != sha256.Sum256([]byte(`{"Records":[`)) || !r.Trailing {
		t.Errorf("Result() = %+v, want the first member's hash and trailing", r)
	}
}

func TestDigestHashLogFile(t *testing.T) {
	tr := &digesttest.Trail{Bucket: "b", AccountID: "111122223333", Region: "us-east-1", Name: "t", HomeRegion: "us-east-1"}
	log := tr.LogFile(testStart)
	d := mustParse(t, tr.Digest(testStart.Add(time.Hour), log))
	r, err := cloudtrail.DigestHashLogFile(bytes.NewReader(log.Body))
	if err != nil {
		t.Fatal(err)
	}
	if v := cloudtrail.CheckDigestLogFile(d.LogFiles[0], &r); v != cloudtrail.DigestLogValid {
		t.Errorf("verdict %v, want valid", v)
	}
	if v := cloudtrail.CheckDigestLogFile(d.LogFiles[0], nil); v != cloudtrail.DigestLogNotFound {
		t.Errorf("never read: verdict %v, want not found", v)
	}
	if _, err := cloudtrail.DigestHashLogFile(bytes.NewReader([]byte(`{"Records":[]}`))); err == nil {
		t.Error("plain JSON hashed as a gzip'd log file")
	}
}

// The hash's cost against the inflating it rides on, measured on the shared
// corpus's log files joined into one gzip member (1.03 MB uncompressed, 7.7x
// compression), go1.26.8 linux/amd64, on a shared 2-vCPU AMD EPYC VM whose
// load average was 9-16 while other work ran: process CPU time per
// uncompressed MB, median of 8 runs of -benchtime 1s (range in brackets).
//
//	                                    CPU µs/MB
//	BenchmarkDigestInflate               1,985 (1,503-2,088)
//	BenchmarkDigestHasher (SHA-256)        746   (729-823)
//	BenchmarkDigestLogReader (both)      2,334 (1,989-2,707)
//
// SHA-256 (with the CPU's SHA extensions) costs about 0.75 ms per MB, some
// 40% of what inflating the same bytes costs; against the worker's whole
// decode and normalize (about 6.3 ms per MB by worker/bench_decode_test.go)
// it is about 12%.

// benchLog returns the shared corpus's log files, uncompressed and joined
// (1.0 MB of real CloudTrail records), and that gzip'd as one member.
func benchLog(b *testing.B) (plain, body []byte) {
	b.Helper()
	root := filepath.Join(corpus.Dir(b), "s3")
	var buf bytes.Buffer
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json.gz") {
			return err
		}
		gz, err := os.ReadFile(path)
		if err == nil {
			buf.Write(digesttest.Gunzip(b, gz))
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	plain = buf.Bytes()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain)
	zw.Close()
	return plain, z.Bytes()
}

// reportCPU reports the process's CPU time per uncompressed MB since cpu0
// was taken: steadier than wall time on a shared machine.
func reportCPU(b *testing.B, cpu0 time.Duration, size int) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) - cpu0
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(float64(cpu.Microseconds())/mb, "cpu-µs/MB")
}

func cpuNow(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDigestHasher is SHA-256 alone, per uncompressed byte, written
// in the chunks a reader gives.
func BenchmarkDigestHasher(b *testing.B) {
	plain, _ := benchLog(b)
	var h cloudtrail.DigestHasher
	b.SetBytes(int64(len(plain)))
	cpu0 := cpuNow(b)
	for b.Loop() {
		h.Reset()
		for p := plain; len(p) > 0; {
			n := min(len(p), 32<<10)
			h.Write(p[:n])
			p = p[n:]
		}
		h.Sum()
	}
	reportCPU(b, cpu0, len(plain))
}

// BenchmarkDigestInflate is inflating alone, with the gzip reader the
// ingest path uses, per uncompressed byte: the cost the hash adds to.
func BenchmarkDigestInflate(b *testing.B) {
	plain, body := benchLog(b)
	zr, _ := kgzip.NewReader(bytes.NewReader(body))
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(plain)))
	cpu0 := cpuNow(b)
	for b.Loop() {
		if err := zr.Reset(bufio.NewReaderSize(bytes.NewReader(body), 32<<10)); err != nil {
			b.Fatal(err)
		}
		drain(b, zr, buf)
	}
	reportCPU(b, cpu0, len(plain))
}

// BenchmarkDigestLogReader is inflating and hashing together, per
// uncompressed byte.
func BenchmarkDigestLogReader(b *testing.B) {
	plain, body := benchLog(b)
	var l cloudtrail.DigestLogReader
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(plain)))
	cpu0 := cpuNow(b)
	for b.Loop() {
		if err := l.Reset(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
		drain(b, &l, buf)
	}
	reportCPU(b, cpu0, len(plain))
}

// drain reads r to its end through buf, in the chunks a decoder reads.
func drain(b *testing.B, r io.Reader, buf []byte) {
	for {
		if _, err := r.Read(buf); err == io.EOF {
			return
		} else if err != nil {
			b.Fatal(err)
		}
	}
}
