package worker

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseNotification checks what the worker relies on, whatever the body:
// no panic; an error comes with the zero Notification and a short message; a
// success has a valid kind and format, and objects exactly when the kind is
// NotificationObjects, each with a bucket and a key, none twice, no more
// than the cap.
func FuzzParseNotification(f *testing.F) {
	for _, body := range notificationFixtures(f) {
		f.Add(body)
	}
	for _, s := range []string{
		`{"s3Bucket":"b","s3ObjectKey":["AWSLogs/1/CloudTrail/us-east-1/2024/05/14/1_CloudTrail_us-east-1_20240514T0905Z_a.json.gz"]}`,
		`{"s3Bucket":"b","s3ObjectKey":["k","k","j"]}`,
		`{"s3Bucket":"b","s3ObjectKey":"k"}`,
		`{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"{\"s3Bucket\":\"b\",\"s3ObjectKey\":[\"k\"]}"}`,
		`{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"CloudTrail validation message."}`,
		`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a+b%2Bc","size":1}}}]}`,
		`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`,
		`{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{"key":"k","size":5}}}`,
		`{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}`,
		`CloudTrail validation message.`,
		`{"Records":null}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := ParseNotification(body)
		if err != nil {
			if !reflect.DeepEqual(n, Notification{}) {
				t.Errorf("error %v came with a notification %+v", err, n)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "notification: ") || len(msg) > 2048 {
				t.Errorf("error message is %d bytes or lacks its prefix: %.300q", len(msg), msg)
			}
			return
		}

		if n.Format == "" {
			t.Errorf("no format: %+v", n)
		}
		switch n.Kind {
		case NotificationObjects:
			if len(n.Objects) == 0 || len(n.Objects) > maxNotificationObjects {
				t.Errorf("kind objects with %d objects", len(n.Objects))
			}
		case NotificationTest, NotificationIgnored:
			if len(n.Objects) != 0 {
				t.Errorf("kind %v with %d objects", n.Kind, len(n.Objects))
			}
		default:
			t.Errorf("invalid kind %d", int(n.Kind))
		}
		seen := make(map[[2]string]bool)
		for i, o := range n.Objects {
			if o.Bucket == "" || o.Key == "" || o.Size < 0 {
				t.Errorf("object %d is %+v", i, o)
			}
			id := [2]string{o.Bucket, o.Key}
			if seen[id] {
				t.Errorf("object %d repeats %+v", i, o)
			}
			seen[id] = true
		}

		// The parse is a function of the body alone.
		if again, err := ParseNotification(body); err != nil || !reflect.DeepEqual(again, n) {
			t.Errorf("second parse differs: %+v, %v", again, err)
		}
	})
}
