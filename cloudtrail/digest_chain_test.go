package cloudtrail_test

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/digesttest"
)

// testStart is when the tests' trails start logging.
var testStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// store is the tests' S3: objects by "bucket/key".
type store map[string]digesttest.Object

func (s store) put(objs ...digesttest.Object) {
	for _, o := range objs {
		s[o.Bucket+"/"+o.Key] = o
	}
}

func (s store) remove(o digesttest.Object) { delete(s, o.Bucket+"/"+o.Key) }

// loc names an object as validate-logs does.
func loc(bucket, key string) string { return "s3://" + bucket + "/" + key }

// report is what verifyStore found, by location.
type report struct {
	digests  map[string]error // nil: valid
	logs     map[string]cloudtrail.DigestLogVerdict
	gaps     []string // digests that start a chain after an older digest
	unlisted []string // log files no valid digest lists
}

// failures returns every location that did not validate, sorted.
func (r report) failures() []string {
	var out []string
	for l, err := range r.digests {
		if err != nil {
			out = append(out, l)
		}
	}
	for l, v := range r.logs {
		if v != cloudtrail.DigestLogValid {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// verifyStore validates every digest in s and the log files they list, as
// validate-logs would over the whole bucket, with the cloudtrail package's
// pure functions: it is the shape of pgtrail's verifier, minus storage.
func verifyStore(t *testing.T, s store, keys *cloudtrail.DigestKeys) report {
	t.Helper()
	r := report{digests: map[string]error{}, logs: map[string]cloudtrail.DigestLogVerdict{}}
	type entry struct {
		key cloudtrail.DigestKey
		d   *cloudtrail.Digest
		obj digesttest.Object
	}
	chains := map[cloudtrail.DigestChain][]entry{}
	listed := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(s)) {
		obj := s[name]
		if cloudtrail.KindOfKey(obj.Key) != cloudtrail.KeyDigest {
			continue
		}
		at := loc(obj.Bucket, obj.Key)
		k, err := cloudtrail.ParseDigestKey(obj.Key)
		if err != nil {
			t.Fatalf("the tests write digests under digest keys: %v", err)
		}
		d, err := cloudtrail.ParseDigest(obj.Body)
		if err == nil {
			err = cloudtrail.VerifyDigest(d, obj.Bucket, obj.Key, obj.Metadata, keys)
		}
		r.digests[at] = err
		if err != nil {
			continue // validate-logs checks no log file of an invalid digest
		}
		chains[k.Chain()] = append(chains[k.Chain()], entry{k, d, obj})
		for _, f := range d.LogFiles {
			at := loc(f.S3Bucket, f.S3Object)
			listed[at] = true
			o, ok := s[f.S3Bucket+"/"+f.S3Object]
			if !ok {
				r.logs[at] = cloudtrail.CheckDigestLogFile(f, nil)
				continue
			}
			read, _ := cloudtrail.DigestHashLogFile(bytes.NewReader(o.Body))
			r.logs[at] = cloudtrail.CheckDigestLogFile(f, &read)
		}
	}
	for _, chain := range chains {
		sort.Slice(chain, func(i, j int) bool { return chain[i].key.End.Before(chain[j].key.End) })
		for i, e := range chain {
			at := loc(e.obj.Bucket, e.obj.Key)
			ref, ok := e.d.PreviousRef()
			if !ok {
				if i > 0 {
					r.gaps = append(r.gaps, at)
				}
				continue
			}
			prev, found := s[ref.Bucket+"/"+ref.Object]
			if !found {
				r.digests[loc(ref.Bucket, ref.Object)] = fmt.Errorf("digest %s: %w", loc(ref.Bucket, ref.Object), cloudtrail.ErrDigestNotFound)
				continue
			}
			pd, err := cloudtrail.ParseDigest(prev.Body)
			if err != nil {
				continue // reported as the previous digest's own failure
			}
			if err := cloudtrail.CheckDigestLink(e.d, pd.Ref(prev.Metadata[cloudtrail.DigestMetaSignature])); err != nil {
				r.digests[at] = err
			}
		}
	}
	for name, obj := range s {
		if k := cloudtrail.KindOfKey(obj.Key); k == cloudtrail.KeyLog && !listed[loc(obj.Bucket, obj.Key)] {
			r.unlisted = append(r.unlisted, "s3://"+name)
		}
	}
	sort.Strings(r.gaps)
	sort.Strings(r.unlisted)
	return r
}

// hours writes n hourly digests for tr, from testStart, with logs log
// files in each hour but the third, and puts them all in s. It returns the
// digests.
func hours(s store, tr *digesttest.Trail, n, logs int) []digesttest.Object {
	var digests []digesttest.Object
	for h := range n {
		end := testStart.Add(time.Duration(h+1)*time.Hour + 91*time.Second)
		var files []digesttest.Object
		for i := range logs {
			if h == 2 {
				break // an hour with no log files still has its digest
			}
			files = append(files, tr.LogFile(end.Add(-time.Duration(50-i*10)*time.Minute)))
		}
		d := tr.Digest(end, files...)
		s.put(files...)
		s.put(d)
		digests = append(digests, d)
	}
	return digests
}

// trail returns a trail of the tests' bucket, home region us-east-1.
func trail(account, region string) *digesttest.Trail {
	return &digesttest.Trail{Bucket: "trail-bucket", AccountID: account, Region: region, Name: "main", HomeRegion: "us-east-1"}
}

// mustParse parses a digest object's body.
func mustParse(tb testing.TB, o digesttest.Object) *cloudtrail.Digest {
	tb.Helper()
	d, err := cloudtrail.ParseDigest(o.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
