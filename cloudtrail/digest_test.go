package cloudtrail_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/digesttest"
)

func TestDigestChainValid(t *testing.T) {
	s := store{}
	prefixed := trail("111122223333", "us-east-1")
	prefixed.Prefix = "audit/ct"
	org := &digesttest.Trail{
		Bucket: "org-bucket", OrgID: "o-a1b2c3d4e5", AccountID: "777788889999", Region: "ap-southeast-2",
		Name: "org_trail", HomeRegion: "us-east-1",
	}
	trails := []*digesttest.Trail{
		prefixed,
		trail("111122223333", "eu-west-1"), // the same account, another region
		trail("444455556666", "us-east-1"), // another account
		org,
	}
	for _, tr := range trails {
		hours(s, tr, 5, 2)
	}
	r := verifyStore(t, s, digesttest.TestKey().Keys())
	if f := r.failures(); len(f) > 0 {
		t.Fatalf("failures in a valid bucket: %v\n%v", f, r.digests)
	}
	if len(r.digests) != 4*5 || len(r.logs) != 4*4*2 {
		t.Errorf("validated %d digests and %d log files, want 20 and 32", len(r.digests), len(r.logs))
	}
	if len(r.gaps) > 0 || len(r.unlisted) > 0 {
		t.Errorf("gaps %v, unlisted %v in an unbroken chain", r.gaps, r.unlisted)
	}

	// The organization trail's digests say so in their keys.
	for name := range s {
		if strings.HasPrefix(name, "org-bucket/") && cloudtrail.KindOfKey(name) == cloudtrail.KeyDigest {
			k, err := cloudtrail.ParseDigestKey(strings.TrimPrefix(name, "org-bucket/"))
			if err != nil || k.OrgID != "o-a1b2c3d4e5" || k.AccountID != "777788889999" || k.Trail != "org_trail" {
				t.Errorf("organization digest key parsed as %+v, %v", k, err)
			}
		}
	}
}

func TestDigestFirstInChain(t *testing.T) {
	tr := trail("111122223333", "us-east-1")
	first := tr.Digest(testStart.Add(time.Hour), tr.LogFile(testStart))
	second := tr.Digest(testStart.Add(2 * time.Hour))
	d := mustParse(t, first)
	if !d.ChainStart() || d.PreviousDigestSignature != "" {
		t.Errorf("first digest: ChainStart %v, previousDigestSignature %q", d.ChainStart(), d.PreviousDigestSignature)
	}
	if _, ok := d.PreviousRef(); ok {
		t.Error("first digest has a PreviousRef")
	}
	if s := cloudtrail.DigestStringToSign(d); !strings.HasSuffix(s, "\nnull") {
		t.Errorf("string to sign %q does not end in null", s)
	}
	if err := cloudtrail.VerifyDigest(d, first.Bucket, first.Key, first.Metadata, digesttest.TestKey().Keys()); err != nil {
		t.Error(err)
	}
	// The second links to the first.
	d2 := mustParse(t, second)
	if err := cloudtrail.CheckDigestLink(d2, d.Ref(first.Metadata["signature"])); err != nil {
		t.Error(err)
	}
	if !strings.HasSuffix(cloudtrail.DigestStringToSign(d2), "\n"+first.Metadata["signature"]) {
		t.Error("the second digest's string to sign does not end in the first's signature")
	}
}

func TestDigestStringToSign(t *testing.T) {
	d := &cloudtrail.Digest{
		DigestEndTime:           "2015-08-17T15:01:31Z",
		DigestS3Bucket:          "bucket",
		DigestS3Object:          awsExampleDigestKey,
		PreviousDigestSignature: "50887ccf",
	}
	d.Hash[0], d.Hash[31] = 0xab, 0x01
	want := "2015-08-17T15:01:31Z\nbucket/" + awsExampleDigestKey + "\n" +
		"ab" + strings.Repeat("00", 30) + "01\n50887ccf"
	if got := cloudtrail.DigestStringToSign(d); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestDigestGap(t *testing.T) {
	s := store{}
	tr := trail("111122223333", "us-east-1")
	before := hours(s, tr, 2, 1)
	tr.Break() // logging off for two hours
	tr.Digest(testStart.Add(3 * time.Hour))
	tr.Break()
	var after []digesttest.Object
	for h := 5; h <= 6; h++ {
		d := tr.Digest(testStart.Add(time.Duration(h) * time.Hour))
		s.put(d)
		after = append(after, d)
	}
	r := verifyStore(t, s, digesttest.TestKey().Keys())
	if f := r.failures(); len(f) > 0 {
		t.Fatalf("a gap is not a failure: %v", f)
	}
	if want := []string{loc(after[0].Bucket, after[0].Key)}; !slices.Equal(r.gaps, want) {
		t.Errorf("gaps %v, want %v", r.gaps, want)
	}
	older, newer := mustParse(t, before[1]), mustParse(t, after[0])
	err := cloudtrail.CheckDigestLink(newer, older.Ref(before[1].Metadata["signature"]))
	if !errors.Is(err, cloudtrail.ErrDigestGap) {
		t.Errorf("link across a gap: %v, want ErrDigestGap", err)
	}
	// validate-logs words it "No log files were delivered by CloudTrail
	// between OLDER_END and NEWER_START".
	if !older.EndTime.Before(newer.StartTime) {
		t.Errorf("gap from %v to %v", older.EndTime, newer.StartTime)
	}
}

func TestDigestTamperedLogFile(t *testing.T) {
	s := store{}
	tr := trail("111122223333", "us-east-1")
	hours(s, tr, 3, 2)
	tampered, untouched := tr.LogFile(testStart.Add(4*time.Hour-40*time.Minute)), tr.LogFile(testStart.Add(4*time.Hour-20*time.Minute))
	s.put(untouched, tr.Digest(testStart.Add(4*time.Hour), tampered, untouched))

	// One byte changed in a record: the source IP.
	plain := digesttest.Gunzip(t, tampered.Body)
	i := bytes.Index(plain, []byte("192.0.2.1"))
	plain[i+8] = '9'
	tampered.Body = digesttest.Gzip(plain)
	s.put(tampered)

	r := verifyStore(t, s, digesttest.TestKey().Keys())
	if want := []string{loc(tampered.Bucket, tampered.Key)}; !slices.Equal(r.failures(), want) {
		t.Fatalf("failures %v, want %v", r.failures(), want)
	}
	if v := r.logs[loc(tampered.Bucket, tampered.Key)]; v != cloudtrail.DigestLogHashMismatch || v.String() != "hash value doesn't match" {
		t.Errorf("tampered log file: %v", v)
	}
}

func TestDigestLogFileDeletedOrAdded(t *testing.T) {
	s := store{}
	tr := trail("111122223333", "us-east-1")
	deleted := tr.LogFile(testStart.Add(30 * time.Minute))
	s.put(tr.Digest(testStart.Add(time.Hour), deleted))
	added := tr.LogFile(testStart.Add(90 * time.Minute)) // in no digest
	s.put(added, tr.Digest(testStart.Add(2*time.Hour)))

	r := verifyStore(t, s, digesttest.TestKey().Keys())
	if v := r.logs[loc(deleted.Bucket, deleted.Key)]; v != cloudtrail.DigestLogNotFound {
		t.Errorf("deleted log file: %v, want not found", v)
	}
	if want := []string{loc(added.Bucket, added.Key)}; !slices.Equal(r.unlisted, want) {
		t.Errorf("unlisted %v, want %v", r.unlisted, want)
	}
}

func TestDigestLogFileTrailingData(t *testing.T) {
	s := store{}
	tr := trail("111122223333", "us-east-1")
	extended, appended := tr.LogFile(testStart.Add(20*time.Minute)), tr.LogFile(testStart.Add(40*time.Minute))
	s.put(tr.Digest(testStart.Add(time.Hour), extended, appended))
	// A second gzip member, holding records of its own; and bytes that are
	// not gzip at all.
	extended.Body = append(extended.Body, digesttest.Gzip([]byte(`{"Records":[{"eventName":"Forged"}]}`))...)
	appended.Body = append(appended.Body, "\n\n"...)
	s.put(extended, appended)

	r := verifyStore(t, s, digesttest.TestKey().Keys())
	for _, o := range []digesttest.Object{extended, appended} {
		if v := r.logs[loc(o.Bucket, o.Key)]; v != cloudtrail.DigestLogTrailingData {
			t.Errorf("%s: %v, want trailing data", o.Key, v)
		}
	}
}

func TestDigestBadSignature(t *testing.T) {
	keys := digesttest.TestKey().Keys()
	forger := &digesttest.Key{Private: digesttest.OtherKey().Private, Fingerprint: digesttest.TestKey().Fingerprint}
	tests := []struct {
		name   string
		make   func(tr *digesttest.Trail) digesttest.Object
		reason error
	}{
		{"signature changed", func(tr *digesttest.Trail) digesttest.Object {
			o := tr.Digest(testStart.Add(time.Hour))
			sig := []byte(o.Metadata["signature"])
			sig[10] ^= 1 // '0'..'9' and 'a'..'f' stay hex
			if sig[10] > 'f' || (sig[10] > '9' && sig[10] < 'a') {
				sig[10] = '0'
			}
			o.Metadata = map[string]string{"signature": string(sig), "signature-algorithm": "SHA256withRSA"}
			return o
		}, cloudtrail.ErrDigestSignature},
		{"log file removed from the body", func(tr *digesttest.Trail) digesttest.Object {
			o := tr.Digest(testStart.Add(time.Hour), tr.LogFile(testStart))
			o.Body = editDigest(t, o.Body, func(m map[string]any) { m["logFiles"] = []any{} })
			return o
		}, cloudtrail.ErrDigestSignature},
		{"signed with another key under the right fingerprint", func(tr *digesttest.Trail) digesttest.Object {
			tr.Key = forger
			return tr.Digest(testStart.Add(time.Hour))
		}, cloudtrail.ErrDigestSignature},
		{"unknown key", func(tr *digesttest.Trail) digesttest.Object {
			tr.Key = digesttest.OtherKey()
			return tr.Digest(testStart.Add(time.Hour))
		}, cloudtrail.ErrDigestKeyNotFound},
		{"no metadata", func(tr *digesttest.Trail) digesttest.Object {
			o := tr.Digest(testStart.Add(time.Hour))
			o.Metadata = nil
			return o
		}, cloudtrail.ErrDigestSignature},
		{"signature not hex", func(tr *digesttest.Trail) digesttest.Object {
			o := tr.Digest(testStart.Add(time.Hour))
			o.Metadata["signature"] = "zz"
			return o
		}, cloudtrail.ErrDigestSignature},
		{"another algorithm", func(tr *digesttest.Trail) digesttest.Object {
			o := tr.Digest(testStart.Add(time.Hour))
			o.Metadata["signature-algorithm"] = "SHA1withRSA"
			return o
		}, cloudtrail.ErrDigestSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.make(trail("111122223333", "us-east-1"))
			d := mustParse(t, o)
			err := cloudtrail.VerifyDigest(d, o.Bucket, o.Key, o.Metadata, keys)
			if !errors.Is(err, tt.reason) {
				t.Fatalf("got %v, want %v", err, tt.reason)
			}
			if want := "digest " + loc(o.Bucket, o.Key) + ": " + tt.reason.Error(); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start %q", err, want)
			}
		})
	}

	t.Run("metadata names in another case", func(t *testing.T) {
		o := trail("111122223333", "us-east-1").Digest(testStart.Add(time.Hour))
		meta := map[string]string{"Signature": o.Metadata["signature"], "Signature-Algorithm": "SHA256withRSA"}
		if err := cloudtrail.VerifyDigest(mustParse(t, o), o.Bucket, o.Key, meta, keys); err != nil {
			t.Error(err)
		}
	})

	t.Run("next digest's link", func(t *testing.T) {
		// A previous digest whose body was replaced no longer hashes to
		// the next digest's previousDigestHashValue.
		s := store{}
		tr := trail("111122223333", "us-east-1")
		ds := hours(s, tr, 3, 1)
		ds[1].Body = editDigest(t, ds[1].Body, func(m map[string]any) { m["logFiles"] = []any{} })
		s.put(ds[1])
		r := verifyStore(t, s, keys)
		want := []string{loc(ds[1].Bucket, ds[1].Key), loc(ds[2].Bucket, ds[2].Key)}
		if !slices.Equal(r.failures(), want) {
			t.Fatalf("failures %v, want %v", r.failures(), want)
		}
		if err := r.digests[want[1]]; !errors.Is(err, cloudtrail.ErrDigestLink) || !strings.Contains(err.Error(), "previousDigestHashValue") {
			t.Errorf("next digest: %v", err)
		}
	})
}

// editDigest changes a digest body's JSON and gzips it again.
func editDigest(t *testing.T, body []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(digesttest.Gunzip(t, body), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return digesttest.Gzip(b)
}

func TestDigestMoved(t *testing.T) {
	s := store{}
	tr := trail("111122223333", "us-east-1")
	ds := hours(s, tr, 3, 1)
	moved := ds[1]
	s.remove(moved)
	k, err := cloudtrail.ParseDigestKey(moved.Key)
	if err != nil {
		t.Fatal(err)
	}
	k.Prefix = "elsewhere"
	moved.Key = k.String()
	s.put(moved)

	d := mustParse(t, moved)
	// The signature covers where the digest was written, not where it is
	// read from: it still verifies.
	pub, _ := digesttest.TestKey().Keys().Lookup(d.DigestPublicKeyFingerprint)
	if err := cloudtrail.VerifyDigestSignature(d, pub, moved.Metadata["signature"]); err != nil {
		t.Fatalf("signature of a moved digest: %v", err)
	}
	err = cloudtrail.VerifyDigest(d, moved.Bucket, moved.Key, moved.Metadata, digesttest.TestKey().Keys())
	if !errors.Is(err, cloudtrail.ErrDigestMoved) {
		t.Fatalf("moved digest: %v", err)
	}
	if err := cloudtrail.CheckDigestLocation(d, "another-bucket", ds[1].Key); !errors.Is(err, cloudtrail.ErrDigestMoved) {
		t.Errorf("digest read from another bucket: %v", err)
	}

	r := verifyStore(t, s, digesttest.TestKey().Keys())
	original := loc(ds[1].Bucket, ds[1].Key)
	if err := r.digests[original]; !errors.Is(err, cloudtrail.ErrDigestNotFound) {
		t.Errorf("the digest's own location: %v, want not found", err)
	}
	if want := []string{original, loc(moved.Bucket, moved.Key)}; !slices.Equal(r.failures(), want) {
		t.Errorf("failures %v, want %v", r.failures(), want)
	}
}

func TestDigestBackfillChain(t *testing.T) {
	s := store{}
	hourly := trail("111122223333", "us-east-1")
	hours(s, hourly, 3, 1)
	backfill := trail("111122223333", "us-east-1")
	backfill.Backfill = true
	var bds []digesttest.Object
	for h := range 3 {
		at := testStart.Add(time.Duration(h) * time.Hour)
		log := backfill.LogFile(at.Add(10 * time.Minute))
		d := backfill.Digest(at.Add(time.Hour+5*time.Second), log)
		s.put(log, d)
		bds = append(bds, d)
	}
	r := verifyStore(t, s, digesttest.TestKey().Keys())
	if f := r.failures(); len(f) > 0 || len(r.gaps) > 0 {
		t.Fatalf("failures %v, gaps %v", f, r.gaps)
	}
	if len(r.digests) != 6 || len(r.logs) != 2+3 {
		t.Errorf("validated %d digests and %d log files, want 6 and 5", len(r.digests), len(r.logs))
	}
	k, err := cloudtrail.ParseDigestKey(bds[1].Key)
	if err != nil || !k.Backfill {
		t.Fatalf("backfill key parsed as %+v, %v", k, err)
	}
	hk, _ := cloudtrail.ParseDigestKey(strings.TrimSuffix(bds[1].Key, "_backfill.json.gz") + ".json.gz")
	if k.Chain() == hk.Chain() {
		t.Error("backfill and hourly digests share a chain")
	}
	if _, ok := bds[1].Metadata[cloudtrail.DigestMetaBackfillTimestamp]; !ok {
		t.Error("backfill digest without backfill-generation-timestamp")
	}
	// A backfill digest links to the backfill digest before it.
	d1, d0 := mustParse(t, bds[1]), mustParse(t, bds[0])
	if err := cloudtrail.CheckDigestLink(d1, d0.Ref(bds[0].Metadata["signature"])); err != nil {
		t.Error(err)
	}
}

func TestParseDigestTrailingData(t *testing.T) {
	o := trail("111122223333", "us-east-1").Digest(testStart.Add(time.Hour))
	for name, body := range map[string][]byte{
		"bytes":         append(bytes.Clone(o.Body), 0, 0, 0, 0),
		"second member": append(bytes.Clone(o.Body), digesttest.Gzip([]byte(`{}`))...),
	} {
		_, err := cloudtrail.ParseDigest(body)
		if !errors.Is(err, cloudtrail.ErrDigestFormat) || !errors.Is(err, cloudtrail.ErrDigestTrailingData) {
			t.Errorf("%s after the gzip stream: %v", name, err)
		}
	}
}

func TestParseDigestFormat(t *testing.T) {
	good := trail("111122223333", "us-east-1").Digest(testStart.Add(time.Hour))
	tests := []struct {
		name string
		body []byte
		why  string
	}{
		{"empty", nil, "gzip"},
		{"not gzip", []byte(`{"digestEndTime":"x"}`), "gzip"},
		{"not JSON", digesttest.Gzip([]byte("digest")), "invalid"},
		{"JSON then more", digesttest.Gzip(append(digesttest.Gunzip(t, good.Body), ` {}`...)), "invalid"},
		{"no digestS3Object", editDigest(t, good.Body, func(m map[string]any) { delete(m, "digestS3Object") }), "no digestS3Object"},
		{"null digestEndTime", editDigest(t, good.Body, func(m map[string]any) { m["digestEndTime"] = nil }), "digestEndTime is null"},
		{"no previousDigestSignature", editDigest(t, good.Body, func(m map[string]any) { delete(m, "previousDigestSignature") }), "no previousDigestSignature"},
		{"bad time", editDigest(t, good.Body, func(m map[string]any) { m["digestStartTime"] = "yesterday" }), "not a time"},
		{"bucket not a string", editDigest(t, good.Body, func(m map[string]any) { m["digestS3Bucket"] = 5 }), "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := cloudtrail.ParseDigest(tt.body)
			if err == nil {
				t.Fatalf("accepted as %+v", d)
			}
			if !errors.Is(err, cloudtrail.ErrDigestFormat) || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q: want ErrDigestFormat saying %q", err, tt.why)
			}
		})
	}

	// Fields CloudTrail may add are ignored; a digest's hash is that of
	// its uncompressed bytes exactly.
	body := editDigest(t, good.Body, func(m map[string]any) { m["newField"] = []any{1, 2} })
	d, err := cloudtrail.ParseDigest(body)
	if err != nil {
		t.Fatal(err)
	}
	if d.DigestS3Object != good.Key || d.EndTime != testStart.Add(time.Hour) {
		t.Errorf("parsed %+v", d)
	}
}

func TestCheckDigestLink(t *testing.T) {
	tr := trail("111122223333", "us-east-1")
	o0, o1 := tr.Digest(testStart.Add(time.Hour)), tr.Digest(testStart.Add(2*time.Hour))
	d0, d1 := mustParse(t, o0), mustParse(t, o1)
	good := d0.Ref(o0.Metadata["signature"])
	if err := cloudtrail.CheckDigestLink(d1, good); err != nil {
		t.Fatal(err)
	}
	if ref, ok := d1.PreviousRef(); !ok || ref != good {
		t.Errorf("PreviousRef() = %+v, %v; want %+v", ref, ok, good)
	}
	for name, edit := range map[string]func(*cloudtrail.DigestRef){
		"another bucket":    func(r *cloudtrail.DigestRef) { r.Bucket = "other" },
		"another object":    func(r *cloudtrail.DigestRef) { r.Object += "x" },
		"another hash":      func(r *cloudtrail.DigestRef) { r.HashValue = strings.Repeat("0", 64) },
		"another signature": func(r *cloudtrail.DigestRef) { r.Signature = "00" + r.Signature[2:] },
	} {
		ref := good
		edit(&ref)
		if err := cloudtrail.CheckDigestLink(d1, ref); !errors.Is(err, cloudtrail.ErrDigestLink) {
			t.Errorf("%s: %v, want ErrDigestLink", name, err)
		}
	}
	// Hex is compared in either case.
	upper := good
	upper.HashValue, upper.Signature = strings.ToUpper(upper.HashValue), strings.ToUpper(upper.Signature)
	if err := cloudtrail.CheckDigestLink(d1, upper); err != nil {
		t.Errorf("uppercase hex: %v", err)
	}
	d1.PreviousDigestHashAlgorithm = "MD5"
	if err := cloudtrail.CheckDigestLink(d1, good); !errors.Is(err, cloudtrail.ErrDigestLink) {
		t.Errorf("previousDigestHashAlgorithm MD5: %v", err)
	}
}
