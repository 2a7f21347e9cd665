// Package digestkeys gives the public keys that sign CloudTrail digest
// files, to worker.DigestVerifier: from a folder of key files
// (PGTRAIL_DIGEST_KEYS), for installations that cannot call CloudTrail and
// for tests, or from CloudTrail's ListPublicKeys, cached. cmd/pgtrail picks
// one.
package digestkeys

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	ct "github.com/pgtrail/pgtrail/cloudtrail"
)

// Dir is the keys read once from a folder (cloudtrail.LoadDigestKeys),
// whatever the region.
type Dir struct {
	keys *ct.DigestKeys
}

// LoadDir reads the keys in dir.
func LoadDir(dir string) (*Dir, error) {
	keys, err := ct.LoadDigestKeys(dir)
	if err != nil {
		return nil, err
	}
	return &Dir{keys: keys}, nil
}

// DigestKeys returns the folder's keys.
func (d *Dir) DigestKeys(context.Context, string, string, time.Time, time.Time) (*ct.DigestKeys, error) {
	return d.keys, nil
}

// ListPublicKeys is the subset of CloudTrail's client that AWS needs.
type ListPublicKeys interface {
	ListPublicKeys(ctx context.Context, in *cloudtrail.ListPublicKeysInput, opts ...func(*cloudtrail.Options)) (*cloudtrail.ListPublicKeysOutput, error)
}

// AWS asks CloudTrail for the public keys of a trail's home region, and
// keeps them: a region's keys are valid for months, and a digest names one
// by fingerprint. A fingerprint it does not hold makes it ask again, for
// the keys valid over the digest's period, at most once per minimum
// interval and region, so that digests signed by an unknown key do not
// turn into a flood of calls. It is safe for concurrent use.
type AWS struct {
	client func(region string) ListPublicKeys
	every  time.Duration

	mu      sync.Mutex
	regions map[string]*regionKeys
}

// regionKeys are one region's keys. keys is replaced, never changed, so
// that a caller may keep looking up in what it was given.
type regionKeys struct {
	mu    sync.Mutex // held while asking
	der   map[string][]byte
	keys  *ct.DigestKeys
	asked time.Time
}

// NewAWS returns an AWS source; client returns CloudTrail's client for a
// region (the keys are per region).
func NewAWS(client func(region string) ListPublicKeys) *AWS {
	return &AWS{client: client, every: time.Minute, regions: map[string]*regionKeys{}}
}

// DigestKeys returns the keys known for homeRegion, asking CloudTrail for
// those valid from start to end if fingerprint is not among them.
func (a *AWS) DigestKeys(ctx context.Context, homeRegion, fingerprint string, start, end time.Time) (*ct.DigestKeys, error) {
	a.mu.Lock()
	r := a.regions[homeRegion]
	if r == nil {
		r = &regionKeys{der: map[string][]byte{}, keys: &ct.DigestKeys{}}
		a.regions[homeRegion] = r
	}
	a.mu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.keys.Lookup(fingerprint); err == nil || time.Since(r.asked) < a.every {
		return r.keys, nil
	}
	in := &cloudtrail.ListPublicKeysInput{}
	if !start.IsZero() {
		s, e := start.UTC(), end.UTC()
		in.StartTime, in.EndTime = &s, &e
	}
	client := a.client(homeRegion)
	for {
		out, err := client.ListPublicKeys(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("cloudtrail: list public keys in %s: %w", homeRegion, err)
		}
		for _, k := range out.PublicKeyList {
			if k.Fingerprint == nil {
				continue
			}
			r.der[*k.Fingerprint] = k.Value
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	r.asked = time.Now()
	keys := &ct.DigestKeys{}
	for fp, der := range r.der {
		if err := keys.Add(fp, der); err != nil {
			return nil, fmt.Errorf("cloudtrail: list public keys in %s: %w", homeRegion, err)
		}
	}
	r.keys = keys
	return keys, nil
}
