package backfill_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgtrail/pgtrail/backfill"
)

const emptyListing = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`

const slowDown = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`

// s3Stub answers the first fail requests with 503 SlowDown, the others
// with an empty listing.
func s3Stub(t *testing.T, fail int64) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(slowDown))
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Write([]byte(emptyListing))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func stubClient(url string, rps float64, opts ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}, append([]func(*s3.Options){backfill.S3Options(rps)}, opts...)...)
}

// TestSlowDownIsRetried: a burst of SlowDown, more than the SDK's default
// three attempts and its retry quota allow, is waited out.
func TestSlowDownIsRetried(t *testing.T) {
	t.Parallel()
	srv, n := s3Stub(t, 5)
	// The same retryer, with its waits shortened for the test.
	short := func(o *s3.Options) { o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 5*time.Millisecond) }
	_, err := stubClient(srv.URL, 0, short).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("b")})
	if err != nil {
		t.Fatalf("after 5 SlowDowns: %v", err)
	}
	if n.Load() != 6 {
		t.Errorf("%d requests, want 6", n.Load())
	}
}

// TestRequestRateCap: at 20 requests/s, 30 requests take more than a second.
func TestRequestRateCap(t *testing.T) {
	t.Parallel()
	srv, n := s3Stub(t, 0)
	c := stubClient(srv.URL, 20)
	start := time.Now()
	for range 30 {
		if _, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("b")}); err != nil {
			t.Fatal(err)
		}
	}
	// A burst of 20, then 10 more at 20/s: at least 0.5 s.
	if d := time.Since(start); d < 450*time.Millisecond || n.Load() != 30 {
		t.Errorf("30 requests in %s (%d seen): the cap did not hold", d, n.Load())
	}
}
