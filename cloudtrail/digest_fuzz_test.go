package cloudtrail_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"strings"
	"testing"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/digesttest"
)

// FuzzParseDigestKey checks that ParseDigestKey never panics, and that a
// key it accepts is one it can write back, byte for byte, and that
// KindOfKey calls a digest.
func FuzzParseDigestKey(f *testing.F) {
	f.Add(awsExampleDigestKey)
	f.Add("audit/AWSLogs/o-exampleorgid/111122223333/CloudTrail-Digest/eu-west-1/2015/08/17/" +
		"111122223333_CloudTrail-Digest_eu-west-1_org_trail_us-east-1_20150817T150131Z_backfill.json.gz")
	f.Add("AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/111122223333_CloudTrail_us-east-1_20260102T0105Z_abc.json.gz")
	f.Add("/AWSLogs//CloudTrail-Digest/////_.json.gz")
	f.Fuzz(func(t *testing.T, key string) {
		k, err := cloudtrail.ParseDigestKey(key)
		if err != nil {
			return
		}
		if s := k.String(); s != key {
			t.Fatalf("ParseDigestKey(%q).String() = %q", key, s)
		}
		if kind := cloudtrail.KindOfKey(key); kind != cloudtrail.KeyDigest {
			t.Fatalf("KindOfKey(%q) = %v for a key ParseDigestKey accepts", key, kind)
		}
		if k.AccountID == "" || k.Region == "" || k.Trail == "" || k.HomeRegion == "" || k.End.IsZero() {
			t.Fatalf("ParseDigestKey(%q) = %+v, with a field empty", key, k)
		}
	})
}

// seedDigest is a digest body as CloudTrail writes it, with one log file.
const seedDigest = `{"awsAccountId":"111122223333","digestStartTime":"2026-03-01T00:00:00Z",` +
	`"digestEndTime":"2026-03-01T01:00:00Z","digestS3Bucket":"b",` +
	`"digestS3Object":"AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/03/01/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20260301T010000Z.json.gz",` +
	`"digestPublicKeyFingerprint":"67b9fa73676d86966b449dd677850753","digestSignatureAlgorithm":"SHA256withRSA",` +
	`"newestEventTime":"2026-03-01T00:59:00Z","oldestEventTime":"2026-03-01T00:01:00Z",` +
	`"previousDigestS3Bucket":"b",` +
	`"previousDigestS3Object":"AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/03/01/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20260301T000000Z.json.gz",` +
	`"previousDigestHashValue":"0d0a","previousDigestHashAlgorithm":"SHA-256","previousDigestSignature":"3a1b",` +
	`"logFiles":[{"s3Bucket":"b","s3Object":"AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/01/111122223333_CloudTrail_us-east-1_20260301T0005Z_abc.json.gz",` +
	`"hashValue":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","hashAlgorithm":"SHA-256",` +
	`"newestEventTime":"2026-03-01T00:05:00Z","oldestEventTime":"2026-03-01T00:01:00Z"}]}`

// FuzzParseDigest checks that ParseDigest never panics on a body, and
// that a digest it accepts hashes to the SHA-256 of its one gzip member.
func FuzzParseDigest(f *testing.F) {
	// The seeds are written out rather than made by digesttest.Trail,
	// which signs with a freshly generated RSA key: every fuzzing worker
	// runs this setup, and a key generated under load can outlast a short
	// -fuzztime ("context deadline exceeded"). ParseDigest does not check
	// signatures.
	f.Add(digesttest.Gzip([]byte(seedDigest)))
	f.Add(digesttest.Gzip([]byte(strings.Replace(seedDigest, `"previousDigestSignature":"3a1b"`, `"previousDigestSignature":null`, 1))))
	f.Add(digesttest.Gzip([]byte(`{"digestS3Bucket":null,"logFiles":[{"hashValue":1}]}`)))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := cloudtrail.ParseDigest(body)
		if err != nil {
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("ParseDigest accepted a body compress/gzip refuses: %v", err)
		}
		zr.Multistream(false)
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("ParseDigest accepted a body compress/gzip refuses: %v", err)
		}
		if d.Hash != sha256.Sum256(raw) {
			t.Fatal("digest hash is not the SHA-256 of its uncompressed body")
		}
		if s := cloudtrail.DigestStringToSign(d); !strings.HasPrefix(s, d.DigestEndTime+"\n") {
			t.Fatalf("string to sign %q", s)
		}
	})
}

// FuzzDigestLogReader checks DigestLogReader's hash and trailing-data
// verdict against compress/gzip reading the first member alone.
func FuzzDigestLogReader(f *testing.F) {
	one := digesttest.Gzip([]byte(`{"Records":[{"eventName":"GetObject"}]}`))
	f.Add(one)
	f.Add(append(bytes.Clone(one), one...))
	f.Add(append(bytes.Clone(one), "xyz"...))
	f.Add(one[:len(one)-3])
	f.Fuzz(func(t *testing.T, body []byte) {
		br := bytes.NewReader(body)
		zr, err := gzip.NewReader(br)
		var want []byte
		if err == nil {
			zr.Multistream(false)
			want, err = io.ReadAll(zr)
		}
		complete := err == nil
		if len(body) > 3 && body[3]>>5 != 0 {
			// Reserved header flag bits: RFC 1952 says to refuse them, as
			// zlib (and so validate-logs) and klauspost/compress do;
			// compress/gzip ignores them.
			complete = false
		}

		l, err := cloudtrail.NewDigestLogReader(bytes.NewReader(body))
		if err != nil {
			if complete {
				t.Fatalf("compress/gzip reads a member, NewDigestLogReader fails: %v", err)
			}
			return
		}
		io.Copy(io.Discard, l)
		r := l.Result()
		if r.Complete != complete {
			t.Fatalf("Complete = %v, compress/gzip reading the first member: %v", r.Complete, complete)
		}
		if !complete {
			return
		}
		if r.Hash != sha256.Sum256(want) {
			t.Fatal("hash is not the SHA-256 of the first member")
		}
		if trailing := br.Len() > 0; r.Trailing != trailing {
			t.Fatalf("Trailing = %v, but %d bytes follow the first member", r.Trailing, br.Len())
		}
	})
}
