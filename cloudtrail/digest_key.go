package cloudtrail

import (
	"fmt"
	"strings"
	"time"
)

// DigestKind says what a CloudTrail S3 key holds, judged from the key's
// layout alone.
type DigestKind uint8

const (
	// DigestKindOther is a key outside CloudTrail's layout.
	DigestKindOther DigestKind = iota
	// DigestKindLog is a log file:
	// [prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/NAME.json.gz.
	DigestKindLog
	// DigestKindInsight is an Insights file, under CloudTrail-Insight/.
	DigestKindInsight
	// DigestKindDigest is a digest file, under CloudTrail-Digest/.
	DigestKindDigest
)

// String returns the kind's name: "log", "insight", "digest" or "other".
func (k DigestKind) String() string {
	switch k {
	case DigestKindLog:
		return "log"
	case DigestKindInsight:
		return "insight"
	case DigestKindDigest:
		return "digest"
	}
	return "other"
}

// The folder names that follow the account in CloudTrail's layout.
const (
	layoutLog     = "CloudTrail"
	layoutInsight = "CloudTrail-Insight"
	layoutDigest  = "CloudTrail-Digest"
)

// DigestKindOfKey reports whether an S3 key is a CloudTrail log file, an
// Insights file or a digest file, from the folders CloudTrail writes it
// under: AWSLogs/, an optional organization id, a 12-digit account, the
// kind's folder, the region and the date. The file must end in .json.gz.
// Anything else, CloudTrail's own files included if moved out of that
// layout, is DigestKindOther.
func DigestKindOfKey(key string) DigestKind {
	l, ok := splitLayout(key)
	if !ok || !strings.HasSuffix(l.file, ".json.gz") {
		return DigestKindOther
	}
	switch l.kind {
	case layoutLog:
		return DigestKindLog
	case layoutInsight:
		return DigestKindInsight
	case layoutDigest:
		return DigestKindDigest
	}
	return DigestKindOther
}

// layout is a key split along CloudTrail's folders:
// [prefix/]AWSLogs/[org/]account/kind/region/yyyy/mm/dd/file.
type layout struct {
	prefix, org, account, kind, region, yyyy, mm, dd, file string
}

// splitLayout splits key from its end, so that a prefix may itself hold
// any folders, AWSLogs included. It checks the account, organization id,
// region and date folders' form, not the kind or the file name.
func splitLayout(key string) (layout, bool) {
	var l layout
	seg := strings.Split(key, "/")
	n := len(seg)
	if n < 8 {
		return l, false
	}
	l.file, l.dd, l.mm, l.yyyy = seg[n-1], seg[n-2], seg[n-3], seg[n-4]
	l.region, l.kind, l.account = seg[n-5], seg[n-6], seg[n-7]
	rest := seg[:n-7]
	if len(rest) >= 2 && isOrgID(rest[len(rest)-1]) && rest[len(rest)-2] == "AWSLogs" {
		l.org = rest[len(rest)-1]
		rest = rest[:len(rest)-1]
	}
	if rest[len(rest)-1] != "AWSLogs" {
		return l, false
	}
	if len(rest) > 1 {
		l.prefix = strings.Join(rest[:len(rest)-1], "/")
		if l.prefix == "" {
			return l, false // a key starting "/AWSLogs/": no prefix CloudTrail writes
		}
	}
	ok := isDigits(l.account, 12) && isRegion(l.region) &&
		isDigits(l.yyyy, 4) && isDigits(l.mm, 2) && isDigits(l.dd, 2) && l.file != ""
	return l, ok
}

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
	if k.Prefix != "" {
		b.WriteString(k.Prefix)
		b.WriteByte('/')
	}
	b.WriteString("AWSLogs/")
	if k.OrgID != "" {
		b.WriteString(k.OrgID)
		b.WriteByte('/')
	}
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

// isDigits reports whether s is n ASCII digits.
func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isOrgID reports whether s is an AWS Organizations id: o- and 10 to 32
// lowercase letters or digits.
func isOrgID(s string) bool {
	id, ok := strings.CutPrefix(s, "o-")
	if !ok || len(id) < 10 || len(id) > 32 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isRegion reports whether s has the form of a region name (us-east-1,
// us-gov-west-1, eu-isoe-west-1): lowercase letters, digits and dashes,
// starting with a letter.
func isRegion(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
