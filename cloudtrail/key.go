package cloudtrail

import (
	"strings"
	"time"
)

// CloudTrail's S3 key layout. Every file a trail delivers is written under
//
//	[prefix/]AWSLogs/[o-org/]ACCOUNT/KIND/REGION/YYYY/MM/DD/NAME.json.gz
//
// where KIND is CloudTrail (log files), CloudTrail-Insight (Insights
// files) or CloudTrail-Digest (digest files), and the date is UTC.

// KeyKind says what a CloudTrail S3 key holds, judged from the key's
// layout alone.
type KeyKind uint8

const (
	// KeyOther is a key outside CloudTrail's layout.
	KeyOther KeyKind = iota
	// KeyLog is a log file:
	// [prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/NAME.json.gz.
	KeyLog
	// KeyInsight is an Insights file, under CloudTrail-Insight/.
	KeyInsight
	// KeyDigest is a digest file, under CloudTrail-Digest/.
	KeyDigest
)

// String returns the kind's name: "log", "insight", "digest" or "other".
func (k KeyKind) String() string {
	switch k {
	case KeyLog:
		return "log"
	case KeyInsight:
		return "insight"
	case KeyDigest:
		return "digest"
	}
	return "other"
}

// Folder returns the folder name that follows the account in the keys of
// the kind's files (CloudTrail, CloudTrail-Insight, CloudTrail-Digest);
// KeyOther's is KeyLog's.
func (k KeyKind) Folder() string {
	switch k {
	case KeyInsight:
		return layoutInsight
	case KeyDigest:
		return layoutDigest
	}
	return layoutLog
}

// EventKinds are the kinds of files that hold events, in the order a
// lister should visit them: log files and Insights files. Digest files
// hold none.
func EventKinds() []KeyKind { return []KeyKind{KeyLog, KeyInsight} }

// The folder names that follow the account in CloudTrail's layout.
const (
	layoutLog     = "CloudTrail"
	layoutInsight = "CloudTrail-Insight"
	layoutDigest  = "CloudTrail-Digest"
)

// Key is what an S3 key in CloudTrail's layout says about its file.
type Key struct {
	Kind KeyKind
	// Prefix is the trail's S3 key prefix, without its trailing slash;
	// empty when the trail has none.
	Prefix string
	// OrgID is the organization id (o-…) of an organization trail, empty
	// for an account's own trail.
	OrgID string
	// AccountID is the 12-digit account whose events the file holds.
	AccountID string
	// Region is the region the file's events come from.
	Region string
	// Day is the date folder, at midnight UTC.
	Day time.Time
	// File is the last segment of the key.
	File string
}

// ParseKey splits an S3 key along CloudTrail's layout. ok is false, and
// the Key zero, for a key outside it, CloudTrail's own files included if
// moved out of it; a key in the layout whose file does not end in .json.gz
// is KeyOther.
func ParseKey(key string) (k Key, ok bool) {
	l, ok := splitLayout(key)
	if !ok {
		return Key{}, false
	}
	day, err := time.Parse("2006/01/02", l.yyyy+"/"+l.mm+"/"+l.dd)
	if err != nil {
		return Key{}, false
	}
	k = Key{Prefix: l.prefix, OrgID: l.org, AccountID: l.account, Region: l.region, Day: day, File: l.file}
	if strings.HasSuffix(l.file, ".json.gz") {
		switch l.kind {
		case layoutLog:
			k.Kind = KeyLog
		case layoutInsight:
			k.Kind = KeyInsight
		case layoutDigest:
			k.Kind = KeyDigest
		}
	}
	return k, true
}

// KindOfKey reports whether an S3 key is a CloudTrail log file, an
// Insights file or a digest file, from the folders CloudTrail writes it
// under (ParseKey). Anything else is KeyOther.
func KindOfKey(key string) KeyKind {
	k, _ := ParseKey(key)
	return k.Kind
}

// IsDigestKey reports whether key names a digest file, which holds no
// events: KindOfKey's KeyDigest, or any key with a CloudTrail-Digest
// folder (a digest copied or moved out of the layout, a local copy of a
// bucket). It is the lenient test of what an ingester skips; KindOfKey
// and ParseDigestKey are the strict ones.
func IsDigestKey(key string) bool {
	return KindOfKey(key) == KeyDigest || strings.Contains(key, "/"+layoutDigest+"/")
}

// LogFolder names the folders CloudTrail writes one account's files of one
// kind for one region under: [Prefix/]AWSLogs/[OrgID/]AccountID/KIND/Region/,
// KIND being Kind.Folder().
type LogFolder struct {
	// Prefix is the trail's S3 key prefix, without its trailing slash.
	Prefix string
	// OrgID is set for an organization trail.
	OrgID     string
	AccountID string
	Region    string
	// Kind is KeyLog for log files (CloudTrail/, also the zero value's
	// folder), KeyInsight for Insights files (CloudTrail-Insight/) or
	// KeyDigest for digest files (CloudTrail-Digest/).
	Kind KeyKind
}

// DayPrefix returns the S3 key prefix of the folder's files of day (taken
// in UTC): [prefix/]AWSLogs/[o-org/]ACCOUNT/KIND/REGION/YYYY/MM/DD/.
func (f LogFolder) DayPrefix(day time.Time) string {
	var b strings.Builder
	writeRoot(&b, f.Prefix, f.OrgID)
	b.WriteString(f.AccountID)
	b.WriteByte('/')
	b.WriteString(f.Kind.Folder())
	b.WriteByte('/')
	b.WriteString(f.Region)
	b.WriteByte('/')
	b.WriteString(day.UTC().Format("2006/01/02"))
	b.WriteByte('/')
	return b.String()
}

// writeRoot writes the start of every key of a trail's files to b:
// [prefix/]AWSLogs/[org/].
func writeRoot(b *strings.Builder, prefix, org string) {
	if prefix != "" {
		b.WriteString(prefix)
		b.WriteByte('/')
	}
	b.WriteString("AWSLogs/")
	if org != "" {
		b.WriteString(org)
		b.WriteByte('/')
	}
}

// DayPrefixes returns DayPrefix for every UTC day from from's to to's,
// both included, in order; none when to is before from.
func (f LogFolder) DayPrefixes(from, to time.Time) []string {
	first := utcDay(from)
	last := utcDay(to)
	var out []string
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		out = append(out, f.DayPrefix(d))
	}
	return out
}

// utcDay returns t's day at midnight UTC.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
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
