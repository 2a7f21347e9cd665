package digestkeys_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/pgtrail/pgtrail/digestkeys"
	"github.com/pgtrail/pgtrail/internal/digesttest"
)

// fakeCloudTrail answers ListPublicKeys with list.
type fakeCloudTrail struct {
	list func(in *cloudtrail.ListPublicKeysInput) (*cloudtrail.ListPublicKeysOutput, error)
}

func (f fakeCloudTrail) ListPublicKeys(_ context.Context, in *cloudtrail.ListPublicKeysInput, _ ...func(*cloudtrail.Options)) (*cloudtrail.ListPublicKeysOutput, error) {
	return f.list(in)
}

// TestAWS: a fingerprint not held makes the source ask the trail's home
// region for the keys of the digest's period, page by page; a known one
// asks nothing; an unknown one asks at most once a minute.
func TestAWS(t *testing.T) {
	key, other := digesttest.TestKey(), digesttest.OtherKey()
	var calls atomic.Int32
	var regions []string
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	src := digestkeys.NewAWS(func(region string) digestkeys.ListPublicKeys {
		regions = append(regions, region)
		return fakeCloudTrail{list: func(in *cloudtrail.ListPublicKeysInput) (*cloudtrail.ListPublicKeysOutput, error) {
			calls.Add(1)
			if in.StartTime == nil || !in.StartTime.Equal(start) {
				t.Errorf("StartTime %v, want %v", in.StartTime, start)
			}
			if in.NextToken == nil {
				return &cloudtrail.ListPublicKeysOutput{NextToken: aws.String("page2"),
					PublicKeyList: []types.PublicKey{{Fingerprint: aws.String("ffff"), Value: other.PKCS1()}}}, nil
			}
			return &cloudtrail.ListPublicKeysOutput{
				PublicKeyList: []types.PublicKey{{Fingerprint: aws.String(key.Fingerprint), Value: key.PKCS1()}}}, nil
		}}
	})
	ctx := context.Background()
	keys, err := src.DigestKeys(ctx, "eu-west-1", key.Fingerprint, start, start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := keys.Lookup(key.Fingerprint); err != nil || !pub.Equal(&key.Private.PublicKey) {
		t.Errorf("lookup after listing: %v", err)
	}
	if _, err := keys.Lookup("ffff"); err != nil {
		t.Errorf("the first page's key: %v", err)
	}
	if calls.Load() != 2 || len(regions) != 1 || regions[0] != "eu-west-1" {
		t.Errorf("%d calls in %v, want 2 (two pages) in eu-west-1", calls.Load(), regions)
	}
	if _, err := src.DigestKeys(ctx, "eu-west-1", key.Fingerprint, start, start.Add(time.Hour)); err != nil || calls.Load() != 2 {
		t.Errorf("a known key: %v, %d calls", err, calls.Load())
	}
	keys, err = src.DigestKeys(ctx, "eu-west-1", "0000", start, start.Add(time.Hour))
	if err != nil || calls.Load() != 2 {
		t.Errorf("an unknown key within a minute: %v, %d calls", err, calls.Load())
	}
	if _, err := keys.Lookup("0000"); err == nil {
		t.Error("an unknown key was found")
	}
}

// TestAWSError: a failed call is an error naming the region.
func TestAWSError(t *testing.T) {
	src := digestkeys.NewAWS(func(string) digestkeys.ListPublicKeys {
		return fakeCloudTrail{list: func(*cloudtrail.ListPublicKeysInput) (*cloudtrail.ListPublicKeysOutput, error) {
			return nil, errors.New("throttled")
		}}
	})
	_, err := src.DigestKeys(context.Background(), "us-east-2", "abcd", time.Now(), time.Now())
	if err == nil || err.Error() != "cloudtrail: list public keys in us-east-2: throttled" {
		t.Errorf("error %v", err)
	}
}

// TestDir reads a PGTRAIL_DIGEST_KEYS folder.
func TestDir(t *testing.T) {
	key := digesttest.TestKey()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, key.Fingerprint+".der"), key.PKIX(), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := digestkeys.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := src.DigestKeys(context.Background(), "any-region", key.Fingerprint, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Lookup(key.Fingerprint); err != nil {
		t.Error(err)
	}
	if _, err := digestkeys.LoadDir(t.TempDir()); err == nil {
		t.Error("an empty folder loaded")
	}
}
