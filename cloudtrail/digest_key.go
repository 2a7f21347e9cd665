package cloudtrail

import (
	"fmt"
	"strings"
	"time"
)

// DigestKey is what a digest file's S3 key says about it:
//
//	[prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/
//	ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHMMSSZ.json.gz
//
// with _backfill before .json.gz for a backfill digest. The date folders
// and the timestamp are the digest's end time.
type DigestKey struct {
	// Prefix is the trail's S3 key prefix, without its trailing slash;
	// empty when the trail has none.
	Prefix string
	// OrgID is the organization id (o-…) of an organization trail, empty
	// for an account's own trail.
	OrgID string
	// AccountID is the 12-digit account whose logs the digest covers.
	AccountID string
	// Region is the region whose log files the digest lists.
	Region string
	// Trail is the trail's name. It may hold underscores.
	Trail string
	// HomeRegion is the region the trail was created in.
	HomeRegion string
	// End is the digest's end time, to the second, in UTC.
	End time.Time
	// Backfill marks a backfill digest (…_backfill.json.gz). Backfill
	// digests form a chain of their own, apart from the hourly one.
	Backfill bool
}

// digestKeyTime is the layout of the timestamp in a digest's file name.
const digestKeyTime = "20060102T150405Z"

// ParseDigestKey parses a digest file's S3 key. The account and region
// must agree between the folders and the file name, and the date folders
// with the file name's timestamp; for any key it accepts,
// ParseDigestKey(key).String() == key.
func ParseDigestKey(key string) (DigestKey, error) {
	var k DigestKey
	fail := func(why string) (DigestKey, error) {
		return DigestKey{}, fmt.Errorf("digest key %q: %s", key, why)
	}
	l, ok := splitLayout(key)
	if !ok {
		return fail("not in CloudTrail's AWSLogs/ layout")
	}
	if l.kind != layoutDigest {
		return fail("not under " + layoutDigest + "/")
	}
	k.Prefix, k.OrgID, k.AccountID, k.Region = l.prefix, l.org, l.account, l.region

	name, ok := strings.CutSuffix(l.file, ".json.gz")
	if !ok {
		return fail("file name does not end in .json.gz")
	}
	name, k.Backfill = strings.CutSuffix(name, "_backfill")
	head := l.account + "_" + layoutDigest + "_" + l.region + "_"
	name, ok = strings.CutPrefix(name, head)
	if !ok {
		return fail("file name does not start with " + head)
	}
	// What is left is TRAIL_HOMEREGION_TIMESTAMP. A region holds no
	// underscore, a trail name may: cut from the right.
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return fail("no timestamp in file name")
	}
	name, stamp := name[:i], name[i+1:]
	t, err := time.Parse(digestKeyTime, stamp)
	if err != nil || t.Format(digestKeyTime) != stamp {
		return fail("timestamp " + stamp + " is not YYYYMMDDTHHMMSSZ")
	}
	k.End = t
	if stamp[:8] != l.yyyy+l.mm+l.dd {
		return fail("timestamp " + stamp + " is not in folder " + l.yyyy + "/" + l.mm + "/" + l.dd)
	}
	i = strings.LastIndexByte(name, '_')
	if i < 0 {
		return fail("no home region in file name")
	}
	k.Trail, k.HomeRegion = name[:i], name[i+1:]
	if k.Trail == "" {
		return fail("empty trail name")
	}
	if !isRegion(k.HomeRegion) {
		return fail("home region " + k.HomeRegion + " is not a region name")
	}
	return k, nil
}

// String returns the S3 key CloudTrail writes the digest to.
func (k DigestKey) String() string {
	var b strings.Builder
	writeRoot(&b, k.Prefix, k.OrgID)
	end := k.End.UTC()
	fmt.Fprintf(&b, "%s/%s/%s/%s/%s_%s_%s_%s_%s_%s",
		k.AccountID, layoutDigest, k.Region, end.Format("2006/01/02"),
		k.AccountID, layoutDigest, k.Region, k.Trail, k.HomeRegion, end.Format(digestKeyTime))
	if k.Backfill {
		b.WriteString("_backfill")
	}
	b.WriteString(".json.gz")
	return b.String()
}

// Chain returns the chain the digest belongs to.
func (k DigestKey) Chain() DigestChain {
	return DigestChain{
		OrgID:      k.OrgID,
		AccountID:  k.AccountID,
		Region:     k.Region,
		Trail:      k.Trail,
		HomeRegion: k.HomeRegion,
		Backfill:   k.Backfill,
	}
}

// DigestChain names one chain of digests: the hourly digests (or the
// backfill digests) of one trail for one account and region, each linked
// to the one before it. The bucket and prefix are not part of it: a trail
// whose bucket or prefix changes goes on with the same chain, its next
// digest naming the previous one at its old location. DigestChain is
// comparable, for use as a map key.
type DigestChain struct {
	OrgID, AccountID, Region, Trail, HomeRegion string
	Backfill                                    bool
}
