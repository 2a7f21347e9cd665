package worker

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// updateNotifications rewrites the golden files in testdata/notifications.
var updateNotifications = flag.Bool("update-notifications", false, "rewrite the golden files in testdata/notifications")

func updateNotificationGolden() bool { return *updateNotifications }

const notificationDir = "testdata/notifications"

// notificationFixtures returns the fixture bodies by file name: *.json, and
// *.txt for bodies that are not JSON.
func notificationFixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	var names []string
	for _, pattern := range []string{"*.json", "*.txt"} {
		m, err := filepath.Glob(filepath.Join(notificationDir, pattern))
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, m...)
	}
	if len(names) == 0 {
		tb.Fatalf("no fixtures in %s", notificationDir)
	}
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		body, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(name)] = body
	}
	return out
}

// notificationGold are the fixtures ParseNotification must accept, with what it
// must make of them. The golden files hold the full output.
var notificationGold = map[string]struct {
	kind    NotificationKind
	format  string
	objects int
}{
	"cloudtrail-sns.json":               {NotificationObjects, "cloudtrail-sns", 3},
	"cloudtrail-sns-org-duplicate.json": {NotificationObjects, "cloudtrail-sns", 2},
	"cloudtrail-raw.json":               {NotificationObjects, "cloudtrail", 1},
	"cloudtrail-raw-literal-key.json":   {NotificationObjects, "cloudtrail", 1},
	"cloudtrail-validation-sns.json":    {NotificationTest, "cloudtrail-test-sns", 0},
	"cloudtrail-validation-raw.txt":     {NotificationTest, "cloudtrail-test", 0},
	"s3-event.json":                     {NotificationObjects, "s3-event", 1},
	"s3-event-sns.json":                 {NotificationObjects, "s3-event-sns", 1},
	"s3-event-encoded-key.json":         {NotificationObjects, "s3-event", 1},
	"s3-event-mixed.json":               {NotificationObjects, "s3-event", 1},
	"s3-event-removed.json":             {NotificationIgnored, "s3-event", 0},
	"s3-event-lifecycle.json":           {NotificationIgnored, "s3-event", 0},
	"s3-test.json":                      {NotificationTest, "s3-test", 0},
	"s3-test-sns.json":                  {NotificationTest, "s3-test-sns", 0},
	"eventbridge.json":                  {NotificationObjects, "eventbridge", 1},
	"eventbridge-encoded-key.json":      {NotificationObjects, "eventbridge", 1},
	"eventbridge-sns.json":              {NotificationObjects, "eventbridge-sns", 1},
	"eventbridge-deleted.json":          {NotificationIgnored, "eventbridge", 0},
}

// notificationBad are the fixtures ParseNotification must reject, with a part
// of the reason it must give.
var notificationBad = map[string]string{
	"bad-not-json.txt":                       "unrecognized body (not a JSON object): \"hello, queue\\n\"",
	"bad-empty.txt":                          "unrecognized body (not a JSON object): \"\"",
	"bad-json-array.json":                    "not a JSON object",
	"bad-json-null.json":                     "not a JSON object",
	"bad-json-string.json":                   "not a JSON object",
	"bad-unknown-shape.json":                 "no member of a known format",
	"bad-trailing-data.json":                 "not a JSON object",
	"bad-wrong-case.json":                    "no member of a known format",
	"bad-ambiguous.json":                     "members of both cloudtrail and s3-event",
	"bad-sns-subscription-confirmation.json": "sns: type \"SubscriptionConfirmation\" is not Notification",
	"bad-sns-garbage-message.json":           "sns: message: unrecognized body (not a JSON object): \"hello, subscribers\"",
	"bad-sns-unknown-json-message.json":      "sns: message: unrecognized body (no member of a known format)",
	"bad-sns-nested.json":                    "sns: message: sns: envelope inside an SNS envelope",
	"bad-sns-message-object.json":            "sns: Message is not a string",
	"bad-sns-no-message.json":                "sns: Message is missing or empty",
	"bad-sns-no-topic.json":                  "sns: TopicArn is missing or empty",
	"bad-cloudtrail-key-string.json":         "cloudtrail: s3ObjectKey is not an array",
	"bad-cloudtrail-key-numbers.json":        "cloudtrail: s3ObjectKey[1] is not a string",
	"bad-cloudtrail-key-null-item.json":      "cloudtrail: s3ObjectKey[1] is not a string",
	"bad-cloudtrail-keys-empty.json":         "cloudtrail: s3ObjectKey is empty",
	"bad-cloudtrail-keys-missing.json":       "cloudtrail: s3ObjectKey is missing",
	"bad-cloudtrail-key-empty.json":          "cloudtrail: s3ObjectKey[1] is empty",
	"bad-cloudtrail-bucket-empty.json":       "cloudtrail: s3Bucket is missing or empty",
	"bad-cloudtrail-bucket-number.json":      "cloudtrail: s3Bucket is not a string",
	"bad-cloudtrail-sns-empty-keys.json":     "sns: message: cloudtrail: s3ObjectKey is empty",
	"bad-s3-event-no-bucket.json":            "s3-event: record 0: s3: bucket is missing",
	"bad-s3-event-empty-bucket.json":         "s3-event: record 0: s3: bucket: name is missing or empty",
	"bad-s3-event-no-key.json":               "s3-event: record 0: s3: object: key is missing or empty",
	"bad-s3-event-removed-no-bucket.json":    "s3-event: record 1: s3: bucket is missing",
	"bad-s3-event-records-empty.json":        "s3-event: Records is empty",
	"bad-s3-event-records-null.json":         "s3-event: Records is missing",
	"bad-s3-event-records-object.json":       "s3-event: Records is not an array",
	"bad-s3-event-bad-escape.json":           "s3-event: record 0: s3: object: key \"AWSLogs/100%zz/file.json.gz\" is not form-encoded",
	"bad-s3-event-not-utf8.json":             "does not decode to UTF-8",
	"bad-s3-event-other-source.json":         "s3-event: record 0: eventSource \"minio:s3\" is not aws:s3",
	"bad-s3-event-version-3.json":            "s3-event: record 0: eventVersion \"3.0\" is not 2.x",
	"bad-s3-event-unknown-name.json":         "s3-event: record 0: eventName \"ObjectFrobnicated:Put\" is not a known S3 event",
	"bad-s3-event-negative-size.json":        "s3-event: record 0: s3: object: size \"-1\" is not a byte count",
	"bad-s3-event-string-size.json":          "is not a byte count",
	"bad-s3-test-other-event.json":           "s3-test: event \"s3:SomethingElse\" from \"Amazon S3\" is not s3:TestEvent",
	"bad-eventbridge-other-source.json":      "eventbridge: source \"aws.ec2\" is not aws.s3",
	"bad-eventbridge-api-call.json":          "eventbridge: detail-type \"AWS API Call via CloudTrail\" is not an S3 object event",
	"bad-eventbridge-no-key.json":            "eventbridge: detail: object: key is missing or empty",
	"bad-eventbridge-no-bucket.json":         "eventbridge: detail: bucket is missing",
}

// notificationGolden is what a golden file holds: the notification, or the error.
type notificationGolden struct {
	*Notification
	Error string `json:",omitempty"`
}

func TestParseNotificationFixtures(t *testing.T) {
	fixtures := notificationFixtures(t)
	for name := range fixtures {
		_, gold := notificationGold[name]
		_, bad := notificationBad[name]
		if gold == bad {
			t.Errorf("%s: list the fixture in exactly one of notificationGold and notificationBad", name)
		}
	}
	for name := range notificationGold {
		if fixtures[name] == nil {
			t.Errorf("%s: listed in notificationGold but not in %s", name, notificationDir)
		}
	}
	for name := range notificationBad {
		if fixtures[name] == nil {
			t.Errorf("%s: listed in notificationBad but not in %s", name, notificationDir)
		}
	}

	for name, body := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n, err := ParseNotification(body)

			if want, ok := notificationGold[name]; ok {
				if err != nil {
					t.Fatalf("ParseNotification: %v", err)
				}
				if n.Kind != want.kind || n.Format != want.format || len(n.Objects) != want.objects {
					t.Errorf("got kind %v, format %q, %d objects; want %v, %q, %d",
						n.Kind, n.Format, len(n.Objects), want.kind, want.format, want.objects)
				}
			}
			if want, ok := notificationBad[name]; ok {
				if err == nil {
					t.Fatalf("ParseNotification accepted a bad body: %+v", n)
				}
				if !strings.HasPrefix(err.Error(), "notification: ") || !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\nwant it to start with \"notification: \" and contain %q", err, want)
				}
			}

			res := notificationGolden{Notification: &n}
			if err != nil {
				res = notificationGolden{Error: err.Error()}
			}
			checkNotificationGolden(t, strings.TrimSuffix(name, filepath.Ext(name))+".golden", res)
		})
	}
}

// checkNotificationGolden compares v, as indented JSON, with the golden file, or
// rewrites the file under -update-notifications.
func checkNotificationGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join(notificationDir, name)
	if updateNotificationGolden() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update-notifications to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update-notifications rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestParseNotificationObjects(t *testing.T) {
	fixtures := notificationFixtures(t)
	const bucket = "aws-cloudtrail-logs-111122223333-8f3b2c1d"
	k1 := "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0905Z_Q1tKc3nRkXo7mB2d.json.gz"
	k2 := "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/14/111122223333_CloudTrail_eu-west-1_20240514T0905Z_h8JbW2sYvLp4ZcAe.json.gz"
	k3 := "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0910Z_nT6xR0fGq9MwKd3U.json.gz"
	decoded := "audit logs+prod/region=us-east-1/café/日本/AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0905Z_Q1tKc3nRkXo7mB2d.json.gz"
	org := "security/AWSLogs/o-a1b2c3d4e5/444455556666/CloudTrail/ap-southeast-2/2024/05/14/444455556666_CloudTrail_ap-southeast-2_20240514T2355Z_"

	tests := []struct {
		fixture string
		want    []ObjectRef
	}{
		// CloudTrail's notifications keep message order and carry no size.
		{"cloudtrail-sns.json", []ObjectRef{{bucket, k1, 0}, {bucket, k2, 0}, {bucket, k3, 0}}},
		// A key listed twice is fetched once.
		{"cloudtrail-sns-org-duplicate.json", []ObjectRef{
			{"org-trail-logs", org + "Zk7pW1qX3vB9sN2e.json.gz", 0},
			{"org-trail-logs", org + "M4rT8yH2cJ6dF0gL.json.gz", 0},
		}},
		// CloudTrail's keys are not URL-encoded: "+" and "%" stay as they are.
		{"cloudtrail-raw-literal-key.json", []ObjectRef{{"audit-bucket", "logs+prod/100%/" + k1, 0}}},
		{"s3-event.json", []ObjectRef{{bucket, k1, 2712}}},
		{"s3-event-sns.json", []ObjectRef{{bucket, k2, 18233}}},
		{"s3-event-encoded-key.json", []ObjectRef{{bucket, decoded, 9123456}}},
		// The ObjectRemoved record is skipped; the repeated creation is one object.
		{"s3-event-mixed.json", []ObjectRef{{bucket, k1, 2712}}},
		{"eventbridge.json", []ObjectRef{{bucket, k1, 2712}}},
		{"eventbridge-encoded-key.json", []ObjectRef{{bucket, decoded, 9123456}}},
		{"eventbridge-sns.json", []ObjectRef{{bucket, k1, 2712}}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			n, err := ParseNotification(fixtures[tt.fixture])
			if err != nil {
				t.Fatalf("ParseNotification: %v", err)
			}
			if n.Kind != NotificationObjects {
				t.Errorf("kind %v, want objects", n.Kind)
			}
			if len(n.Objects) != len(tt.want) {
				t.Fatalf("got %d objects %+v, want %+v", len(n.Objects), n.Objects, tt.want)
			}
			for i := range tt.want {
				if n.Objects[i] != tt.want[i] {
					t.Errorf("object %d:\ngot  %+v\nwant %+v", i, n.Objects[i], tt.want[i])
				}
			}
		})
	}
}

func TestNotificationDecodeS3EventKey(t *testing.T) {
	tests := []struct {
		encoded, want string
	}{
		{"a+b%2Bc", "a b+c"},
		{"AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/x.json.gz", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/x.json.gz"},
		{"region%3Dus-east-1/date%3D2024-05-14", "region=us-east-1/date=2024-05-14"},
		{"caf%C3%A9", "café"},
		{"%E6%97%A5%E6%9C%AC%E8%AA%9E", "日本語"},
		{"%F0%9F%93%9C+log", "📜 log"},
		{"café", "café"}, // unencoded UTF-8 passes through
		{"100%25", "100%"},
		{"a%2Fb", "a/b"},
		{"%20", " "},
	}
	for _, tt := range tests {
		got, err := decodeS3EventKey(tt.encoded)
		if err != nil || got != tt.want {
			t.Errorf("decodeS3EventKey(%q) = %q, %v; want %q", tt.encoded, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "100%", "%zz", "%2", "%FF", "%C3%28"} {
		if got, err := decodeS3EventKey(bad); err == nil {
			t.Errorf("decodeS3EventKey(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseNotificationLimits(t *testing.T) {
	cloudTrail := func(n int) []byte {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/" + strings.Repeat("k", i%7+1) + "_" + strconv.Itoa(i) + ".json.gz"
		}
		body, err := json.Marshal(map[string]any{"s3Bucket": "b", "s3ObjectKey": keys})
		if err != nil {
			t.Fatal(err)
		}
		return body
	}

	t.Run("at the object cap", func(t *testing.T) {
		n, err := ParseNotification(cloudTrail(maxNotificationObjects))
		if err != nil {
			t.Fatal(err)
		}
		if len(n.Objects) != maxNotificationObjects {
			t.Errorf("got %d objects, want %d", len(n.Objects), maxNotificationObjects)
		}
	})
	t.Run("over the object cap", func(t *testing.T) {
		_, err := ParseNotification(cloudTrail(maxNotificationObjects + 1))
		if err == nil || !strings.Contains(err.Error(), "more than 10000") {
			t.Errorf("got %v, want an error naming the cap", err)
		}
	})
	t.Run("records over the object cap", func(t *testing.T) {
		// Such a body is over maxNotificationBytes too; parseNotificationBody checks the
		// record cap by itself.
		rec := `{"eventSource":"aws:s3","eventVersion":"2.1","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}`
		body := `{"Records":[` + strings.Repeat(rec+",", maxNotificationObjects) + rec + `]}`
		_, err := parseNotificationBody([]byte(body), true)
		if err == nil || !strings.Contains(err.Error(), "more than 10000") {
			t.Errorf("got %v, want an error naming the cap", err)
		}
	})
	t.Run("body over the SQS maximum", func(t *testing.T) {
		body := make([]byte, maxNotificationBytes+1)
		_, err := ParseNotification(body)
		if err == nil || !strings.Contains(err.Error(), "more than SQS's") {
			t.Errorf("got %v, want an error naming the size", err)
		}
	})
	t.Run("error quotes at most maxNotificationQuote bytes of the body", func(t *testing.T) {
		body := []byte(`{"unknown":"` + strings.Repeat("é", 500) + `"}`)
		_, err := ParseNotification(body)
		if err == nil {
			t.Fatal("want an error")
		}
		if len(err.Error()) > 200 || !strings.HasSuffix(err.Error(), "…") {
			t.Errorf("error is %d bytes, want a short excerpt: %q", len(err.Error()), err)
		}
	})
}

func TestNotificationKindString(t *testing.T) {
	for k, want := range map[NotificationKind]string{
		0:                   "unknown(0)",
		NotificationObjects: "objects",
		NotificationTest:    "test",
		NotificationIgnored: "ignored",
	} {
		if got := k.String(); got != want {
			t.Errorf("NotificationKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
