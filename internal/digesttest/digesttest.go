// Package digesttest writes what CloudTrail writes to S3 when log file
// validation is on, for pgtrail's tests: log files, and hourly or backfill
// digest files that list them, chained and signed exactly as the digest
// format says, as S3 objects with their metadata.
//
// No real digest file is public, and CloudTrail's private keys are not:
// the digests are signed with a test RSA key generated when first needed,
// and verify only against it.
package digesttest

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// Key is a test signing key and the fingerprint digests name it by.
type Key struct {
	Private *rsa.PrivateKey
	// Fingerprint is the hex MD5 of the key's PKCS#1 DER. It only looks
	// like AWS's fingerprints (32 hex digits): AWS does not say how it
	// derives them, and pgtrail matches them as opaque strings.
	Fingerprint string
}

var testKeys [2]struct {
	once sync.Once
	key  *Key
}

// TestKey returns the key digests are signed with unless a Trail says
// otherwise. It is generated once per process.
func TestKey() *Key { return testKey(0) }

// OtherKey returns a second key, for signatures that must not verify
// against TestKey.
func OtherKey() *Key { return testKey(1) }

func testKey(i int) *Key {
	k := &testKeys[i]
	k.once.Do(func() {
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("digesttest: generate key: " + err.Error())
		}
		sum := md5.Sum(x509.MarshalPKCS1PublicKey(&priv.PublicKey))
		k.key = &Key{Private: priv, Fingerprint: hex.EncodeToString(sum[:])}
	})
	return k.key
}

// PKCS1 returns the public key as ListPublicKeys returns it: DER, PKCS#1.
func (k *Key) PKCS1() []byte { return x509.MarshalPKCS1PublicKey(&k.Private.PublicKey) }

// PKIX returns the public key in DER, PKIX (SubjectPublicKeyInfo).
func (k *Key) PKIX() []byte {
	der, err := x509.MarshalPKIXPublicKey(&k.Private.PublicKey)
	if err != nil {
		panic("digesttest: marshal key: " + err.Error())
	}
	return der
}

// PEM returns the public key in PEM: "RSA PUBLIC KEY" (PKCS#1), or
// "PUBLIC KEY" (PKIX) when pkix is set.
func (k *Key) PEM(pkix bool) []byte {
	if pkix {
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.PKIX()})
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: k.PKCS1()})
}

// Keys returns a cloudtrail.DigestKeys holding k's public key.
func (k *Key) Keys() *cloudtrail.DigestKeys {
	keys := &cloudtrail.DigestKeys{}
	if err := keys.Add(k.Fingerprint, k.PKCS1()); err != nil {
		panic("digesttest: " + err.Error())
	}
	return keys
}

// Object is an S3 object as CloudTrail writes it.
type Object struct {
	Bucket, Key string
	// Body is the object's content: gzip'd JSON.
	Body []byte
	// Metadata is the object's user metadata, named as the AWS SDK gives
	// it (without x-amz-meta-): a digest's signature and
	// signature-algorithm.
	Metadata map[string]string

	sum        string // hex SHA-256 of a log file's uncompressed body
	start, end time.Time
}

// Trail writes the log files and digests of one trail for one account
// and region, each digest chained to the one Trail wrote before it. Set
// its fields, then call LogFile and Digest in time order.
type Trail struct {
	Bucket, Prefix string
	// OrgID makes it an organization trail's (o-…).
	OrgID             string
	AccountID, Region string
	Name, HomeRegion  string
	// Backfill makes its digests backfill digests: a chain of their own.
	Backfill bool
	// Key signs the digests; nil is TestKey.
	Key *Key

	prev *link
	n    int
}

// link is what the next digest records of the last one.
type link struct {
	bucket, key, hash, signature string
	end                          time.Time
}

// Break makes the next digest start a new chain, with null previous
// fields, as after logging or log file validation was off.
func (tr *Trail) Break() { tr.prev = nil }

// LogFile returns a log file of two records delivered at at, under the
// trail's log key layout.
func (tr *Trail) LogFile(at time.Time) Object {
	tr.n++
	at = at.UTC()
	key := fmt.Sprintf("%s%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_Test%012d.json.gz",
		tr.root(), tr.AccountID, tr.Region, at.Format("2006/01/02"),
		tr.AccountID, tr.Region, at.Format("20060102T1504Z"), tr.n)
	var recs bytes.Buffer
	recs.WriteString(`{"Records":[`)
	for i := range 2 {
		if i > 0 {
			recs.WriteByte(',')
		}
		fmt.Fprintf(&recs, `{"eventVersion":"1.11","eventTime":"%s","eventSource":"s3.amazonaws.com",`+
			`"eventName":"GetObject","awsRegion":"%s","sourceIPAddress":"192.0.2.%d",`+
			`"eventID":"00000000-0000-4000-8000-%012d","recipientAccountId":"%s"}`,
			at.Add(-time.Duration(i+1)*time.Minute).Format(time.RFC3339), tr.Region, i+1, tr.n*10+i, tr.AccountID)
	}
	recs.WriteString(`]}`)
	sum := sha256.Sum256(recs.Bytes())
	return Object{
		Bucket: tr.Bucket, Key: key, Body: Gzip(recs.Bytes()),
		sum: hex.EncodeToString(sum[:]), start: at.Add(-2 * time.Minute), end: at.Add(-time.Minute),
	}
}

// Digest returns the digest ending at end that lists logs (made by
// LogFile, possibly by another Trail), signed, and linked to the digest
// the trail wrote before it unless Break was called since.
func (tr *Trail) Digest(end time.Time, logs ...Object) Object {
	end = end.UTC().Truncate(time.Second)
	key := cloudtrail.DigestKey{
		Prefix: tr.Prefix, OrgID: tr.OrgID, AccountID: tr.AccountID, Region: tr.Region,
		Trail: tr.Name, HomeRegion: tr.HomeRegion, End: end, Backfill: tr.Backfill,
	}.String()
	signer := tr.Key
	if signer == nil {
		signer = TestKey()
	}
	start := end.Add(-time.Hour)
	if tr.prev != nil {
		start = tr.prev.end
	}
	d := digestJSON{
		AWSAccountID:               tr.AccountID,
		DigestStartTime:            start.Format(time.RFC3339),
		DigestEndTime:              end.Format(time.RFC3339),
		DigestS3Bucket:             tr.Bucket,
		DigestS3Object:             key,
		DigestPublicKeyFingerprint: signer.Fingerprint,
		DigestSignatureAlgorithm:   cloudtrail.DigestSignatureAlgorithm,
		LogFiles:                   []logFileJSON{},
	}
	if tr.prev != nil {
		sha := "SHA-256"
		d.PreviousDigestS3Bucket = &tr.prev.bucket
		d.PreviousDigestS3Object = &tr.prev.key
		d.PreviousDigestHashValue = &tr.prev.hash
		d.PreviousDigestHashAlgorithm = &sha
		d.PreviousDigestSignature = &tr.prev.signature
	}
	for _, l := range logs {
		if l.sum == "" {
			panic("digesttest: Digest lists an object LogFile did not make: " + l.Key)
		}
		oldest, newest := l.start.Format(time.RFC3339), l.end.Format(time.RFC3339)
		d.LogFiles = append(d.LogFiles, logFileJSON{
			S3Bucket: l.Bucket, S3Object: l.Key, HashValue: l.sum, HashAlgorithm: "SHA-256",
			NewestEventTime: newest, OldestEventTime: oldest,
		})
		if d.OldestEventTime == nil || oldest < *d.OldestEventTime {
			d.OldestEventTime = &oldest
		}
		if d.NewestEventTime == nil || newest > *d.NewestEventTime {
			d.NewestEventTime = &newest
		}
	}
	body, err := json.Marshal(d)
	if err != nil {
		panic("digesttest: " + err.Error())
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	prevSig := "null"
	if tr.prev != nil {
		prevSig = tr.prev.signature
	}
	// The string to sign, written out here rather than taken from
	// cloudtrail, so that the tests check cloudtrail against the format.
	toSign := d.DigestEndTime + "\n" + tr.Bucket + "/" + key + "\n" + hash + "\n" + prevSig
	signed := sha256.Sum256([]byte(toSign))
	sig, err := rsa.SignPKCS1v15(rand.Reader, signer.Private, crypto.SHA256, signed[:])
	if err != nil {
		panic("digesttest: sign: " + err.Error())
	}
	sigHex := hex.EncodeToString(sig)
	meta := map[string]string{
		cloudtrail.DigestMetaSignature:          sigHex,
		cloudtrail.DigestMetaSignatureAlgorithm: cloudtrail.DigestSignatureAlgorithm,
	}
	if tr.Backfill {
		meta[cloudtrail.DigestMetaBackfillTimestamp] = end.Add(24 * time.Hour).Format(time.RFC3339)
	}
	tr.prev = &link{bucket: tr.Bucket, key: key, hash: hash, signature: sigHex, end: end}
	return Object{Bucket: tr.Bucket, Key: key, Body: Gzip(body), Metadata: meta, start: start, end: end}
}

// root is the key up to the account: [prefix/]AWSLogs/[org/].
func (tr *Trail) root() string {
	r := "AWSLogs/"
	if tr.Prefix != "" {
		r = tr.Prefix + "/" + r
	}
	if tr.OrgID != "" {
		r += tr.OrgID + "/"
	}
	return r
}

// digestJSON is a digest's body, its fields in the order of AWS's
// example; a nil field is written as null.
type digestJSON struct {
	AWSAccountID                string        `json:"awsAccountId"`
	DigestStartTime             string        `json:"digestStartTime"`
	DigestEndTime               string        `json:"digestEndTime"`
	DigestS3Bucket              string        `json:"digestS3Bucket"`
	DigestS3Object              string        `json:"digestS3Object"`
	DigestPublicKeyFingerprint  string        `json:"digestPublicKeyFingerprint"`
	DigestSignatureAlgorithm    string        `json:"digestSignatureAlgorithm"`
	NewestEventTime             *string       `json:"newestEventTime"`
	OldestEventTime             *string       `json:"oldestEventTime"`
	PreviousDigestS3Bucket      *string       `json:"previousDigestS3Bucket"`
	PreviousDigestS3Object      *string       `json:"previousDigestS3Object"`
	PreviousDigestHashValue     *string       `json:"previousDigestHashValue"`
	PreviousDigestHashAlgorithm *string       `json:"previousDigestHashAlgorithm"`
	PreviousDigestSignature     *string       `json:"previousDigestSignature"`
	LogFiles                    []logFileJSON `json:"logFiles"`
}

// logFileJSON is a logFiles entry. It is written out here, rather than
// taken from cloudtrail.DigestLogFile, so that the tests check cloudtrail's
// JSON names against the format.
type logFileJSON struct {
	S3Bucket        string `json:"s3Bucket"`
	S3Object        string `json:"s3Object"`
	HashValue       string `json:"hashValue"`
	HashAlgorithm   string `json:"hashAlgorithm"`
	NewestEventTime string `json:"newestEventTime"`
	OldestEventTime string `json:"oldestEventTime"`
}

// Gzip returns b gzip'd, in one gzip member, as CloudTrail writes files.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b) // a bytes.Buffer does not fail
	zw.Close()
	return buf.Bytes()
}

// Gunzip returns the uncompressed content of a gzip'd body, every member.
func Gunzip(tb testing.TB, body []byte) []byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("gunzip: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatalf("gunzip: %v", err)
	}
	return b
}

// KeyDir returns a new folder holding k's public key as PGTRAIL_DIGEST_KEYS
// expects it: FINGERPRINT.pem, in PEM, PKIX when pkix is set, else PKCS#1.
func (k *Key) KeyDir(tb testing.TB, pkix bool) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, k.Fingerprint+".pem"), k.PEM(pkix), 0o600); err != nil {
		tb.Fatalf("digesttest: %v", err)
	}
	return dir
}
