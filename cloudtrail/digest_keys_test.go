package cloudtrail_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/digesttest"
)

func TestParseDigestPublicKey(t *testing.T) {
	k := digesttest.TestKey()
	for name, data := range map[string][]byte{
		"PKCS#1 DER, as ListPublicKeys gives it": k.PKCS1(),
		"PKIX DER":                               k.PKIX(),
		"PKCS#1 PEM":                             k.PEM(false),
		"PKIX PEM":                               k.PEM(true),
	} {
		pub, err := cloudtrail.ParseDigestPublicKey(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !pub.Equal(&k.Private.PublicKey) {
			t.Errorf("%s: another key", name)
		}
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for name, data := range map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("not a key"),
		"ECDSA":          ecDER,
		"two PEM blocks": append(k.PEM(false), k.PEM(true)...),
		"PEM of garbage": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("x")}),
	} {
		if _, err := cloudtrail.ParseDigestPublicKey(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadDigestKeys(t *testing.T) {
	k, other := digesttest.TestKey(), digesttest.OtherKey()
	dir := t.TempDir()
	write := func(dir, name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(dir, k.Fingerprint+".pem", k.PEM(true))
	write(dir, strings.ToUpper(other.Fingerprint)+".DER", other.PKCS1())
	write(dir, "README.md", []byte("keys from ListPublicKeys"))
	keys, err := cloudtrail.LoadDigestKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if keys.Len() != 2 {
		t.Fatalf("loaded %d keys, want 2", keys.Len())
	}
	// A digest signed by either key verifies with the keys loaded.
	for _, signer := range []*digesttest.Key{k, other} {
		tr := trail("111122223333", "us-east-1")
		tr.Key = signer
		o := tr.Digest(testStart.Add(time.Hour))
		d := mustParse(t, o)
		if err := cloudtrail.VerifyDigest(d, o.Bucket, o.Key, o.Metadata, keys); err != nil {
			t.Error(err)
		}
	}

	for name, files := range map[string]map[string][]byte{
		"duplicate fingerprint": {k.Fingerprint + ".pem": k.PEM(false), k.Fingerprint + ".der": k.PKCS1()},
		"bad key file":          {k.Fingerprint + ".pem": []byte("-----BEGIN PUBLIC KEY-----\n")},
		"no key file":           {"README": []byte("x")},
	} {
		dir := t.TempDir()
		for n, data := range files {
			write(dir, n, data)
		}
		if _, err := cloudtrail.LoadDigestKeys(dir); err == nil || !strings.HasPrefix(err.Error(), "digest keys") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := cloudtrail.LoadDigestKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing folder loaded")
	}
}

func TestDigestKeysLookup(t *testing.T) {
	var keys cloudtrail.DigestKeys
	if _, err := keys.Lookup("abc"); err == nil {
		t.Error("empty DigestKeys found a key")
	}
	k := digesttest.TestKey()
	if err := keys.Add(strings.ToUpper(k.Fingerprint), k.PKIX()); err != nil {
		t.Fatal(err)
	}
	if pub, err := keys.Lookup(k.Fingerprint); err != nil || !pub.Equal(&k.Private.PublicKey) {
		t.Errorf("Lookup: %v", err)
	}
	if err := keys.Add("", k.PKCS1()); err == nil {
		t.Error("added a key with no fingerprint")
	}
	if err := keys.Add("abc", []byte("x")); err == nil {
		t.Error("added a key that does not parse")
	}
}
