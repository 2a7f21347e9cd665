package cloudtrail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
)

// The reasons a digest or a log file fails to validate. Their text is the
// reason validate-logs prints after INVALID:, so that an error reads like
// its line "Digest file\ts3://BUCKET/KEY\tINVALID: REASON".
var (
	// ErrDigestFormat is a digest that is not gzip'd JSON with the fields
	// validate-logs requires, or has bytes after its gzip stream.
	// validate-logs: "INVALID: invalid format".
	ErrDigestFormat = errors.New("invalid format")
	// ErrDigestMoved is a digest read from another bucket or key than the
	// digestS3Bucket and digestS3Object it names: it was copied or moved
	// from where CloudTrail wrote it. validate-logs: "INVALID: has been
	// moved from its original location".
	ErrDigestMoved = errors.New("has been moved from its original location")
	// ErrDigestKeyNotFound is a digest whose digestPublicKeyFingerprint
	// names no known public key. validate-logs: "INVALID: public key not
	// found in region REGION for fingerprint FINGERPRINT".
	ErrDigestKeyNotFound = errors.New("public key not found")
	// ErrDigestSignature is a digest whose signature does not verify, or
	// whose S3 object has no signature or signature-algorithm metadata.
	// validate-logs: "INVALID: signature verification failed".
	ErrDigestSignature = errors.New("signature verification failed")
	// ErrDigestNotFound is a digest that a newer one names as its previous
	// but that is not in the bucket. validate-logs reports the missing
	// digest: "Digest file\ts3://BUCKET/KEY\tINVALID: not found".
	ErrDigestNotFound = errors.New("not found")
	// ErrDigestLink is a digest whose previousDigest… fields do not match
	// the digest before it in its chain. validate-logs does not compare
	// them (it follows previousDigestS3Object and verifies what it finds);
	// pgtrail reports the mismatch as a failure of the newer digest.
	ErrDigestLink = errors.New("does not match the previous digest")
	// ErrDigestGap is a digest with no previous digest
	// (previousDigestS3Bucket is null): the first of a trail, or the first
	// after logging or log file validation was turned off. It is reported,
	// not a failure. validate-logs, when an older digest exists: "No log
	// files were delivered by CloudTrail between OLDER_END and THIS_START".
	ErrDigestGap = errors.New("no previous digest")
	// ErrDigestTrailingData is a gzip stream followed by more bytes. Since
	// May 2026 validate-logs calls such a log file invalid ("unexpected
	// data after end of compressed stream").
	ErrDigestTrailingData = errors.New("unexpected data after end of compressed stream")
)

// Digest is a digest file's body: one hour (or one backfill batch) of one
// trail's log files for one account and region, each with the SHA-256 of
// its uncompressed bytes, and a link to the digest before it. Text fields
// hold the JSON's strings as written (a JSON null is empty), so that the
// signed string is built from exactly what CloudTrail signed.
type Digest struct {
	AWSAccountID               string
	DigestStartTime            string
	DigestEndTime              string
	DigestS3Bucket             string
	DigestS3Object             string
	DigestPublicKeyFingerprint string
	DigestSignatureAlgorithm   string
	NewestEventTime            string
	OldestEventTime            string

	// The previous digest in the chain; all empty (null) when there is
	// none, in a chain's first digest.
	PreviousDigestS3Bucket      string
	PreviousDigestS3Object      string
	PreviousDigestHashValue     string
	PreviousDigestHashAlgorithm string
	PreviousDigestSignature     string

	// LogFiles are the log files delivered in the digest's period.
	LogFiles []DigestLogFile

	// StartTime and EndTime are DigestStartTime and DigestEndTime parsed.
	StartTime, EndTime time.Time
	// Hash is the SHA-256 of the digest's uncompressed body: the hash a
	// digest's signature covers, and the next digest's
	// previousDigestHashValue.
	Hash DigestHash
}

// DigestLogFile is one log file that a digest lists.
type DigestLogFile struct {
	S3Bucket string `json:"s3Bucket"`
	S3Object string `json:"s3Object"`
	// HashValue is the lowercase hex SHA-256 of the log file's
	// uncompressed bytes.
	HashValue       string `json:"hashValue"`
	HashAlgorithm   string `json:"hashAlgorithm"`
	NewestEventTime string `json:"newestEventTime"`
	OldestEventTime string `json:"oldestEventTime"`
}

// DigestHash is a SHA-256, of a log file's or a digest's uncompressed
// bytes.
type DigestHash [sha256.Size]byte

// String returns the hash in lowercase hex, as digests write it.
func (h DigestHash) String() string { return hex.EncodeToString(h[:]) }

// ChainStart reports whether the digest names no previous digest
// (previousDigestS3Bucket is null), as validate-logs decides: the first
// digest of a trail, or the first after a gap. See ErrDigestGap.
func (d *Digest) ChainStart() bool { return d.PreviousDigestS3Bucket == "" }

// maxDigestBytes bounds a digest's uncompressed size. An hour of an
// organization trail's busiest account and region lists a few thousand log
// files at about 400 bytes each; the bound only stops a gzip bomb.
const maxDigestBytes = 64 << 20

// ParseDigest parses a digest file's body, gzip'd JSON as CloudTrail
// writes it, and hashes its uncompressed bytes. It requires the fields
// validate-logs requires (digestPublicKeyFingerprint, digestS3Bucket,
// digestS3Object, digestStartTime, digestEndTime, and
// previousDigestSignature, which may be null), and one gzip stream with
// nothing after it. Every error wraps ErrDigestFormat.
func ParseDigest(body []byte) (*Digest, error) {
	raw, err := gunzipDigest(body)
	if err != nil {
		return nil, fmt.Errorf("digest body: %w: %w", ErrDigestFormat, err)
	}
	var w digestJSON
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("digest body: %w: %w", ErrDigestFormat, err)
	}
	d, err := w.digest()
	if err != nil {
		return nil, fmt.Errorf("digest body: %w: %s", ErrDigestFormat, err)
	}
	d.Hash = sha256.Sum256(raw)
	return d, nil
}

// gunzipDigest inflates a digest's single gzip stream, refusing anything
// after it and anything over maxDigestBytes.
func gunzipDigest(body []byte) ([]byte, error) {
	br := bytes.NewReader(body)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	zr.Multistream(false)
	raw, err := io.ReadAll(io.LimitReader(zr, maxDigestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(raw) > maxDigestBytes {
		return nil, fmt.Errorf("larger than %d bytes uncompressed", maxDigestBytes)
	}
	// A bytes.Reader is an io.ByteReader: the gzip reader stopped just
	// after its stream's trailer.
	if br.Len() > 0 {
		return nil, fmt.Errorf("gzip: %w (%d bytes)", ErrDigestTrailingData, br.Len())
	}
	return raw, nil
}

// digestJSON is a digest's JSON, with each top-level text field able to
// tell absent from null.
type digestJSON struct {
	AWSAccountID                jsonText        `json:"awsAccountId"`
	DigestStartTime             jsonText        `json:"digestStartTime"`
	DigestEndTime               jsonText        `json:"digestEndTime"`
	DigestS3Bucket              jsonText        `json:"digestS3Bucket"`
	DigestS3Object              jsonText        `json:"digestS3Object"`
	DigestPublicKeyFingerprint  jsonText        `json:"digestPublicKeyFingerprint"`
	DigestSignatureAlgorithm    jsonText        `json:"digestSignatureAlgorithm"`
	NewestEventTime             jsonText        `json:"newestEventTime"`
	OldestEventTime             jsonText        `json:"oldestEventTime"`
	PreviousDigestS3Bucket      jsonText        `json:"previousDigestS3Bucket"`
	PreviousDigestS3Object      jsonText        `json:"previousDigestS3Object"`
	PreviousDigestHashValue     jsonText        `json:"previousDigestHashValue"`
	PreviousDigestHashAlgorithm jsonText        `json:"previousDigestHashAlgorithm"`
	PreviousDigestSignature     jsonText        `json:"previousDigestSignature"`
	LogFiles                    []DigestLogFile `json:"logFiles"`
}

func (w *digestJSON) digest() (*Digest, error) {
	for _, f := range []struct {
		name string
		v    jsonText
		null bool // may be null
	}{
		{"digestPublicKeyFingerprint", w.DigestPublicKeyFingerprint, false},
		{"digestS3Bucket", w.DigestS3Bucket, false},
		{"digestS3Object", w.DigestS3Object, false},
		{"previousDigestSignature", w.PreviousDigestSignature, true},
		{"digestEndTime", w.DigestEndTime, false},
		{"digestStartTime", w.DigestStartTime, false},
	} {
		if !f.v.set {
			return nil, fmt.Errorf("no %s", f.name)
		}
		if f.v.null && !f.null {
			return nil, fmt.Errorf("%s is null", f.name)
		}
	}
	d := &Digest{
		AWSAccountID:                w.AWSAccountID.s,
		DigestStartTime:             w.DigestStartTime.s,
		DigestEndTime:               w.DigestEndTime.s,
		DigestS3Bucket:              w.DigestS3Bucket.s,
		DigestS3Object:              w.DigestS3Object.s,
		DigestPublicKeyFingerprint:  w.DigestPublicKeyFingerprint.s,
		DigestSignatureAlgorithm:    w.DigestSignatureAlgorithm.s,
		NewestEventTime:             w.NewestEventTime.s,
		OldestEventTime:             w.OldestEventTime.s,
		PreviousDigestS3Bucket:      w.PreviousDigestS3Bucket.s,
		PreviousDigestS3Object:      w.PreviousDigestS3Object.s,
		PreviousDigestHashValue:     w.PreviousDigestHashValue.s,
		PreviousDigestHashAlgorithm: w.PreviousDigestHashAlgorithm.s,
		PreviousDigestSignature:     w.PreviousDigestSignature.s,
		LogFiles:                    w.LogFiles,
	}
	var err error
	if d.StartTime, err = time.Parse(time.RFC3339, d.DigestStartTime); err != nil {
		return nil, fmt.Errorf("digestStartTime %q is not a time", d.DigestStartTime)
	}
	if d.EndTime, err = time.Parse(time.RFC3339, d.DigestEndTime); err != nil {
		return nil, fmt.Errorf("digestEndTime %q is not a time", d.DigestEndTime)
	}
	return d, nil
}

// jsonText is a JSON string that may be null or absent.
type jsonText struct {
	s         string
	set, null bool
}

// UnmarshalJSON is called for every key present, null included.
func (t *jsonText) UnmarshalJSON(b []byte) error {
	t.set = true
	if string(b) == "null" {
		t.null = true
		return nil
	}
	return json.Unmarshal(b, &t.s)
}
