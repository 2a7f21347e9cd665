package cloudtrail

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// The S3 object metadata CloudTrail writes on a digest file, as the AWS
// SDK gives it (without the x-amz-meta- prefix).
const (
	// DigestMetaSignature is the hex RSA signature of the digest.
	DigestMetaSignature = "signature"
	// DigestMetaSignatureAlgorithm names the signature's algorithm,
	// DigestSignatureAlgorithm.
	DigestMetaSignatureAlgorithm = "signature-algorithm"
	// DigestMetaBackfillTimestamp is on backfill digests: when the
	// backfill was generated.
	DigestMetaBackfillTimestamp = "backfill-generation-timestamp"
)

// DigestSignatureAlgorithm is the one signature algorithm CloudTrail uses:
// RSASSA-PKCS1-v1_5 over a SHA-256.
const DigestSignatureAlgorithm = "SHA256withRSA"

// DigestStringToSign returns the string a digest's signature covers:
//
//	digestEndTime + "\n" +
//	digestS3Bucket + "/" + digestS3Object + "\n" +
//	hex(SHA-256 of the uncompressed digest) + "\n" +
//	previousDigestSignature, or the word null in a chain's first digest
func DigestStringToSign(d *Digest) string {
	prev := d.PreviousDigestSignature
	if prev == "" {
		prev = "null"
	}
	return d.DigestEndTime + "\n" + d.DigestS3Bucket + "/" + d.DigestS3Object + "\n" +
		d.Hash.String() + "\n" + prev
}

// VerifyDigestSignature checks signatureHex, a digest's signature metadata,
// against the digest with pub: RSASSA-PKCS1-v1_5 over the SHA-256 of
// DigestStringToSign. Its errors wrap ErrDigestSignature.
func VerifyDigestSignature(d *Digest, pub *rsa.PublicKey, signatureHex string) error {
	sig, err := hex.DecodeString(signatureHex)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: signature is not hex", ErrDigestSignature)
	}
	sum := sha256.Sum256([]byte(DigestStringToSign(d)))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return ErrDigestSignature
	}
	return nil
}

// VerifyDigest checks a digest read from bucket and key, with the S3
// object metadata meta, in the order validate-logs does before it trusts a
// digest: that the metadata holds a signature and its algorithm
// (ErrDigestSignature), that the digest was read from where it says
// CloudTrail wrote it (CheckDigestLocation, ErrDigestMoved), that its
// public key is among keys (ErrDigestKeyNotFound), and that its signature
// verifies (ErrDigestSignature). Errors name the digest's location:
// "digest s3://BUCKET/KEY: REASON". A nil error is validate-logs'
// "Digest file\ts3://BUCKET/KEY\tvalid"; the chain link and the log files
// are checked apart (CheckDigestLink, CheckDigestLogFile).
func VerifyDigest(d *Digest, bucket, key string, meta map[string]string, keys *DigestKeys) error {
	fail := func(err error) error { return fmt.Errorf("digest s3://%s/%s: %w", bucket, key, err) }
	sig, okSig := metaValue(meta, DigestMetaSignature)
	alg, okAlg := metaValue(meta, DigestMetaSignatureAlgorithm)
	if !okSig || !okAlg {
		return fail(fmt.Errorf("%w: no %s or %s metadata", ErrDigestSignature, DigestMetaSignature, DigestMetaSignatureAlgorithm))
	}
	if err := CheckDigestLocation(d, bucket, key); err != nil {
		return err
	}
	pub, err := keys.Lookup(d.DigestPublicKeyFingerprint)
	if err != nil {
		return fail(err)
	}
	if alg != DigestSignatureAlgorithm {
		return fail(fmt.Errorf("%w: signature algorithm %q is not %s", ErrDigestSignature, alg, DigestSignatureAlgorithm))
	}
	if err := VerifyDigestSignature(d, pub, sig); err != nil {
		return fail(err)
	}
	return nil
}

// metaValue returns meta[name], matching the name in any case: S3
// metadata names are case-insensitive, and clients differ in how they
// spell them.
func metaValue(meta map[string]string, name string) (string, bool) {
	if v, ok := meta[name]; ok {
		return v, true
	}
	for k, v := range meta {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// CheckDigestLocation checks that a digest read from bucket and key names
// that same place as its digestS3Bucket and digestS3Object. A digest copied
// or moved elsewhere still carries a valid signature, since the signature
// covers the location it names, not the one it was read from: only this
// check catches it. Its error wraps ErrDigestMoved (validate-logs:
// "INVALID: has been moved from its original location").
func CheckDigestLocation(d *Digest, bucket, key string) error {
	if d.DigestS3Bucket != bucket || d.DigestS3Object != key {
		return fmt.Errorf("digest s3://%s/%s: %w (written to s3://%s/%s)",
			bucket, key, ErrDigestMoved, d.DigestS3Bucket, d.DigestS3Object)
	}
	return nil
}

// DigestRef is what a digest records of the digest before it in its chain,
// and what pgtrail keeps of a verified digest to check the next one's link.
type DigestRef struct {
	// Bucket and Object locate the digest.
	Bucket, Object string
	// HashValue is the hex SHA-256 of the digest's uncompressed body.
	HashValue string
	// Signature is the digest's hex signature, from its S3 metadata.
	Signature string
}

// Ref returns what the next digest in the chain should record of d, given
// d's signature metadata. Take it only from a digest that VerifyDigest
// accepted, whose location is then the one it names.
func (d *Digest) Ref(signature string) DigestRef {
	return DigestRef{Bucket: d.DigestS3Bucket, Object: d.DigestS3Object, HashValue: d.Hash.String(), Signature: signature}
}

// PreviousRef returns what d records of the digest before it, and false
// when d starts a chain (ChainStart).
func (d *Digest) PreviousRef() (DigestRef, bool) {
	if d.ChainStart() {
		return DigestRef{}, false
	}
	return DigestRef{
		Bucket:    d.PreviousDigestS3Bucket,
		Object:    d.PreviousDigestS3Object,
		HashValue: d.PreviousDigestHashValue,
		Signature: d.PreviousDigestSignature,
	}, true
}

// CheckDigestLink checks d's link to prev, the digest before it in its
// chain: that d's previousDigestS3Bucket, previousDigestS3Object,
// previousDigestHashValue (SHA-256) and previousDigestSignature are
// prev's. A mismatch wraps ErrDigestLink: the previous digest was replaced,
// or prev is not the digest d names (the one d names is then missing,
// ErrDigestNotFound, if it is nowhere to be found). A d that starts a
// chain has no link to check: the error wraps ErrDigestGap, a gap to
// report, not a failure.
func CheckDigestLink(d *Digest, prev DigestRef) error {
	fail := func(err error, format string, args ...any) error {
		return fmt.Errorf("digest s3://%s/%s: %w: %s", d.DigestS3Bucket, d.DigestS3Object, err, fmt.Sprintf(format, args...))
	}
	want, ok := d.PreviousRef()
	switch {
	case !ok:
		return fail(ErrDigestGap, "previousDigestS3Bucket is null")
	case want.Bucket != prev.Bucket || want.Object != prev.Object:
		return fail(ErrDigestLink, "it names s3://%s/%s as its previous digest, not s3://%s/%s",
			want.Bucket, want.Object, prev.Bucket, prev.Object)
	case d.PreviousDigestHashAlgorithm != "SHA-256":
		return fail(ErrDigestLink, "previousDigestHashAlgorithm %q is not SHA-256", d.PreviousDigestHashAlgorithm)
	case !strings.EqualFold(want.HashValue, prev.HashValue):
		return fail(ErrDigestLink, "previousDigestHashValue %s, but s3://%s/%s hashes to %s",
			want.HashValue, prev.Bucket, prev.Object, prev.HashValue)
	case !strings.EqualFold(want.Signature, prev.Signature):
		return fail(ErrDigestLink, "previousDigestSignature is not the signature of s3://%s/%s", prev.Bucket, prev.Object)
	}
	return nil
}
