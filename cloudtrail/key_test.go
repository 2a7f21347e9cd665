package cloudtrail_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

func TestParseKey(t *testing.T) {
	k, ok := cloudtrail.ParseKey("audit/AWSLogs/o-aa11bb22cc/111122223333/CloudTrail/eu-west-1/2026/01/02/111122223333_CloudTrail_eu-west-1_20260102T0105Z_abc.json.gz")
	want := cloudtrail.Key{Kind: cloudtrail.KeyLog, Prefix: "audit", OrgID: "o-aa11bb22cc", AccountID: "111122223333",
		Region: "eu-west-1", Day: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		File: "111122223333_CloudTrail_eu-west-1_20260102T0105Z_abc.json.gz"}
	if !ok || k != want {
		t.Errorf("ParseKey = %+v, %v; want %+v", k, ok, want)
	}
	for _, key := range []string{
		"AWSLogs/111122223333/CloudTrail/us-east-1/2026/13/02/x.json.gz", // no such month
		"AWSLogs/1111/CloudTrail/us-east-1/2026/01/02/x.json.gz",         // not an account
		"logs/x.json.gz",
	} {
		if k, ok := cloudtrail.ParseKey(key); ok {
			t.Errorf("ParseKey(%q) = %+v, want it refused", key, k)
		}
	}
}

// TestIsDigestKey: digests in the layout, and every key the worker skipped
// as a digest before KindOfKey (a CloudTrail-Digest folder anywhere).
func TestIsDigestKey(t *testing.T) {
	for key, want := range map[string]bool{
		awsExampleDigestKey:                                                      true,
		"AWSLogs/111122223333/CloudTrail-Digest/":                                true,
		"copy/CloudTrail-Digest/x.json.gz":                                       true,
		"AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/x.json.gz":         false,
		"AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/01/02/x.json.gz": false,
		"CloudTrail-Digest.json.gz":                                              false,
	} {
		if got := cloudtrail.IsDigestKey(key); got != want {
			t.Errorf("IsDigestKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestDayPrefixes(t *testing.T) {
	f := cloudtrail.LogFolder{Prefix: "audit", OrgID: "o-aa11bb22cc", AccountID: "111122223333", Region: "eu-west-1"}
	from := time.Date(2024, 2, 28, 23, 0, 0, 0, time.UTC)
	// 01:00 on 1 March in UTC+2 is still 29 February in UTC.
	to := time.Date(2024, 3, 1, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*3600))
	got := f.DayPrefixes(from, to)
	want := []string{
		"audit/AWSLogs/o-aa11bb22cc/111122223333/CloudTrail/eu-west-1/2024/02/28/",
		"audit/AWSLogs/o-aa11bb22cc/111122223333/CloudTrail/eu-west-1/2024/02/29/",
	}
	if !slices.Equal(got, want) {
		t.Errorf("DayPrefixes = %q, want %q", got, want)
	}
	bare := cloudtrail.LogFolder{AccountID: "111122223333", Region: "us-east-1"}
	if got := bare.DayPrefix(from); got != "AWSLogs/111122223333/CloudTrail/us-east-1/2024/02/28/" {
		t.Errorf("DayPrefix without prefix or org = %q", got)
	}
	if got := f.DayPrefixes(to, from); len(got) != 0 {
		t.Errorf("DayPrefixes of an empty range = %q", got)
	}
	// Every day prefix is where KindOfKey finds log files.
	for _, p := range got {
		if k, ok := cloudtrail.ParseKey(p + "x.json.gz"); !ok || k.Kind != cloudtrail.KeyLog || k.AccountID != f.AccountID {
			t.Errorf("ParseKey(%q) = %+v, %v", p+"x.json.gz", k, ok)
		}
	}
}

// TestDayPrefixesOfEveryKind: Insights and digest files have the log
// files' layout under their own folder, and every prefix DayPrefix gives
// is where ParseKey finds files of that kind.
func TestDayPrefixesOfEveryKind(t *testing.T) {
	day := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	for kind, want := range map[cloudtrail.KeyKind]string{
		cloudtrail.KeyOther:   "AWSLogs/o-aa11bb22cc/111122223333/CloudTrail/eu-west-1/2026/01/02/",
		cloudtrail.KeyLog:     "AWSLogs/o-aa11bb22cc/111122223333/CloudTrail/eu-west-1/2026/01/02/",
		cloudtrail.KeyInsight: "AWSLogs/o-aa11bb22cc/111122223333/CloudTrail-Insight/eu-west-1/2026/01/02/",
		cloudtrail.KeyDigest:  "AWSLogs/o-aa11bb22cc/111122223333/CloudTrail-Digest/eu-west-1/2026/01/02/",
	} {
		f := cloudtrail.LogFolder{OrgID: "o-aa11bb22cc", AccountID: "111122223333", Region: "eu-west-1", Kind: kind}
		got := f.DayPrefixes(day, day.Add(time.Hour))
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: DayPrefixes = %q, want [%q]", kind, got, want)
			continue
		}
		wantKind := kind
		if kind == cloudtrail.KeyOther {
			wantKind = cloudtrail.KeyLog
		}
		if k, ok := cloudtrail.ParseKey(got[0] + "x.json.gz"); !ok || k.Kind != wantKind || k.Day != day.Truncate(24*time.Hour) {
			t.Errorf("%s: ParseKey(%q) = %+v, %v", kind, got[0]+"x.json.gz", k, ok)
		}
	}
	// The kinds that hold events are log and Insights files, not digests.
	if got := cloudtrail.EventKinds(); !slices.Equal(got, []cloudtrail.KeyKind{cloudtrail.KeyLog, cloudtrail.KeyInsight}) {
		t.Errorf("EventKinds = %v", got)
	}
}
