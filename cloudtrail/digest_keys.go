package cloudtrail

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DigestKeys holds the public keys that sign digests, by fingerprint.
//
// A fingerprint is opaque to pgtrail: CloudTrail's ListPublicKeys returns
// each key (DER, PKCS#1) with its Fingerprint, a digest names its key in
// digestPublicKeyFingerprint, and validate-logs matches the two as strings.
// AWS documents no way to compute it from the key, so pgtrail never does;
// it compares fingerprints case-insensitively, as the hex they are.
//
// The zero DigestKeys is empty and ready to use. A DigestKeys is safe for
// concurrent lookups once no more keys are added.
type DigestKeys struct {
	m map[string]*rsa.PublicKey
}

// Add parses key (see ParseDigestPublicKey) and adds it under fingerprint,
// replacing any key already there.
func (k *DigestKeys) Add(fingerprint string, key []byte) error {
	if fingerprint == "" {
		return errors.New("digest key: empty fingerprint")
	}
	pub, err := ParseDigestPublicKey(key)
	if err != nil {
		return fmt.Errorf("digest key %s: %w", fingerprint, err)
	}
	k.add(fingerprint, pub)
	return nil
}

func (k *DigestKeys) add(fingerprint string, pub *rsa.PublicKey) {
	if k.m == nil {
		k.m = make(map[string]*rsa.PublicKey)
	}
	k.m[strings.ToLower(fingerprint)] = pub
}

// Lookup returns the key with fingerprint, or an error wrapping
// ErrDigestKeyNotFound.
func (k *DigestKeys) Lookup(fingerprint string) (*rsa.PublicKey, error) {
	if k != nil {
		if pub, ok := k.m[strings.ToLower(fingerprint)]; ok {
			return pub, nil
		}
	}
	return nil, fmt.Errorf("%w for fingerprint %s", ErrDigestKeyNotFound, fingerprint)
}

// Len returns the number of keys.
func (k *DigestKeys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.m)
}

// ParseDigestPublicKey parses an RSA public key in any of the encodings an
// operator may hold: DER as ListPublicKeys returns it (PKCS#1
// RSAPublicKey), DER PKIX (SubjectPublicKeyInfo, as openssl writes it),
// or either in PEM ("RSA PUBLIC KEY" or "PUBLIC KEY").
func ParseDigestPublicKey(data []byte) (*rsa.PublicKey, error) {
	der := data
	if block, rest := pem.Decode(data); block != nil {
		if bytes.Contains(rest, []byte("-----BEGIN")) {
			return nil, errors.New("more than one PEM block")
		}
		der = block.Bytes
	}
	if pub, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return pub, nil
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("not an RSA public key in DER or PEM, PKCS#1 or PKIX")
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an RSA public key", key)
	}
	return pub, nil
}

// LoadDigestKeys reads the public keys in dir, the folder named by
// PGTRAIL_DIGEST_KEYS for installations that cannot call ListPublicKeys:
// one key per file, named FINGERPRINT.pem or FINGERPRINT.der, in any
// encoding ParseDigestPublicKey takes. Other files are ignored; a key file
// that does not parse, two files for one fingerprint, or a folder with no
// key at all is an error.
func LoadDigestKeys(dir string) (*DigestKeys, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("digest keys: %w", err)
	}
	keys := &DigestKeys{}
	from := make(map[string]string) // fingerprint → file
	for _, e := range entries {
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if e.IsDir() || (ext != ".pem" && ext != ".der") {
			continue
		}
		fp := strings.ToLower(strings.TrimSuffix(name, filepath.Ext(name)))
		path := filepath.Join(dir, name)
		if prev, ok := from[fp]; ok {
			return nil, fmt.Errorf("digest keys %s: fingerprint %s also in %s", path, fp, prev)
		}
		from[fp] = name
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("digest keys: %w", err)
		}
		pub, err := ParseDigestPublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("digest keys %s: %w", path, err)
		}
		keys.add(fp, pub)
	}
	if keys.Len() == 0 {
		return nil, fmt.Errorf("digest keys %s: no FINGERPRINT.pem or FINGERPRINT.der file", dir)
	}
	return keys, nil
}
