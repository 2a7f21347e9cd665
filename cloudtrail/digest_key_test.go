package cloudtrail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// awsExampleDigestKey is the digestS3Object of the sample digest in AWS's
// documentation of the digest file.
const awsExampleDigestKey = "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/" +
	"111122223333_CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz"

func TestParseDigestKey(t *testing.T) {
	end := time.Date(2015, 8, 17, 15, 1, 31, 0, time.UTC)
	tests := []struct {
		name string
		key  string
		want cloudtrail.DigestKey
	}{
		{"aws example", awsExampleDigestKey, cloudtrail.DigestKey{
			AccountID: "111122223333", Region: "us-east-2", Trail: "your-trail-name", HomeRegion: "us-east-2", End: end,
		}},
		{"organization trail with prefix",
			"audit/AWSLogs/o-exampleorgid/111122223333/CloudTrail-Digest/eu-west-1/2015/08/17/" +
				"111122223333_CloudTrail-Digest_eu-west-1_org-trail_us-east-1_20150817T150131Z.json.gz",
			cloudtrail.DigestKey{
				Prefix: "audit", OrgID: "o-exampleorgid", AccountID: "111122223333", Region: "eu-west-1",
				Trail: "org-trail", HomeRegion: "us-east-1", End: end,
			}},
		{"prefix of several folders, AWSLogs among them, trail name with underscores",
			"a/AWSLogs/b/AWSLogs/111122223333/CloudTrail-Digest/us-gov-west-1/2015/08/17/" +
				"111122223333_CloudTrail-Digest_us-gov-west-1_my_trail_2_us-gov-west-1_20150817T150131Z.json.gz",
			cloudtrail.DigestKey{
				Prefix: "a/AWSLogs/b", AccountID: "111122223333", Region: "us-gov-west-1",
				Trail: "my_trail_2", HomeRegion: "us-gov-west-1", End: end,
			}},
		{"backfill",
			"AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/" +
				"111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_20150817T150131Z_backfill.json.gz",
			cloudtrail.DigestKey{
				AccountID: "111122223333", Region: "us-east-2", Trail: "t", HomeRegion: "us-east-2", End: end, Backfill: true,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cloudtrail.ParseDigestKey(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if s := got.String(); s != tt.key {
				t.Errorf("String() = %q, want the key back", s)
			}
			if cloudtrail.KindOfKey(tt.key) != cloudtrail.KeyDigest {
				t.Errorf("KindOfKey = %v, want digest", cloudtrail.KindOfKey(tt.key))
			}
		})
	}
}

func TestParseDigestKeyRejects(t *testing.T) {
	const dir = "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/"
	const name = "111122223333_CloudTrail-Digest_us-east-2_trail_us-east-2_20150817T150131Z.json.gz"
	tests := []struct{ name, key, why string }{
		{"log file", "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1500Z_abc.json.gz", "not under"},
		{"no AWSLogs", "logs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/" + name, "layout"},
		{"empty prefix", "/" + dir + name, "layout"},
		{"short account", "AWSLogs/11112222333/CloudTrail-Digest/us-east-2/2015/08/17/" + name, "layout"},
		{"bad organization id", "AWSLogs/o-X/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/" + name, "layout"},
		{"account differs", dir + "444455556666" + name[12:], "does not start with"},
		{"region differs", dir + strings.Replace(name, "_us-east-2_trail", "_us-west-2_trail", 1), "does not start with"},
		{"date differs", "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/18/" + name, "not in folder"},
		{"one-digit hour", dir + strings.Replace(name, "T150131Z", "T50131Z", 1), "timestamp"},
		{"month 13", "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/13/17/" + strings.Replace(name, "20150817", "20151317", 1), "timestamp"},
		{"no home region", dir + "111122223333_CloudTrail-Digest_us-east-2_trail_20150817T150131Z.json.gz", "home region"},
		{"empty trail", dir + "111122223333_CloudTrail-Digest_us-east-2__us-east-2_20150817T150131Z.json.gz", "empty trail"},
		{"not .json.gz", dir + strings.TrimSuffix(name, ".gz"), ".json.gz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := cloudtrail.ParseDigestKey(tt.key)
			if err == nil {
				t.Fatalf("accepted %q as %+v", tt.key, k)
			}
			if !strings.Contains(err.Error(), tt.why) || !strings.HasPrefix(err.Error(), "digest key ") {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
		})
	}
}

func TestKindOfKey(t *testing.T) {
	tests := []struct {
		key  string
		want cloudtrail.KeyKind
	}{
		{"AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/111122223333_CloudTrail_us-east-1_20260102T0105Z_abc.json.gz", cloudtrail.KeyLog},
		{"p/AWSLogs/o-aa11bb22cc/111122223333/CloudTrail/us-east-1/2026/01/02/x.json.gz", cloudtrail.KeyLog},
		{"AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/01/02/111122223333_CloudTrail-Insight_us-east-1_20260102T0105Z_abc.json.gz", cloudtrail.KeyInsight},
		{awsExampleDigestKey, cloudtrail.KeyDigest},
		{"AWSLogs/111122223333/elasticloadbalancing/us-east-1/2026/01/02/x.log.gz", cloudtrail.KeyOther},
		{"AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/x.json", cloudtrail.KeyOther},
		{"AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/x.json.gz", cloudtrail.KeyOther},
		{"AWSLogs/111122223333/CloudTrail-Digest/", cloudtrail.KeyOther},
		{"", cloudtrail.KeyOther},
	}
	for _, tt := range tests {
		if got := cloudtrail.KindOfKey(tt.key); got != tt.want {
			t.Errorf("KindOfKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestDigestChainIdentity(t *testing.T) {
	hourly, err := cloudtrail.ParseDigestKey(awsExampleDigestKey)
	if err != nil {
		t.Fatal(err)
	}
	later := hourly
	later.End = later.End.Add(time.Hour)
	later.Prefix = "moved-prefix"
	if hourly.Chain() != later.Chain() {
		t.Error("two digests of one trail, account and region are in different chains")
	}
	backfill := hourly
	backfill.Backfill = true
	if hourly.Chain() == backfill.Chain() {
		t.Error("a backfill digest is in the hourly chain")
	}
	other := hourly
	other.Region = "eu-west-1"
	if hourly.Chain() == other.Chain() {
		t.Error("two regions share a chain")
	}
}
