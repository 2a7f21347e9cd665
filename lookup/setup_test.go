package lookup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"go.uber.org/zap/zaptest"
	"golang.org/x/time/rate"

	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/testdb"
	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// The key every test client signs with.
const (
	testKeyID  = "AKIAPGTRAILTEST00001"
	testSecret = "pgtrail-test-secret/0123456789abcdefghijkl"
	testRegion = "us-east-1"
)

// bundle is a database loaded from corpus files, a Reader on it, and the
// means to start LookupEvents servers over it.
type bundle struct {
	url    string
	reader *sink.Reader
	owner  *sink.Postgres
}

// setup loads the s3/ trees of the named corpus sources (all of them when
// none is named) into a fresh database through the worker's real decode and
// write path, as pgtrail ingest does.
func setup(t *testing.T, sources ...string) *bundle {
	t.Helper()
	dir := corpus.Dir(t)
	pg, url := testdb.Open(t)
	roots := []string{filepath.Join(dir, "s3")}
	if len(sources) > 0 {
		roots = nil
		for _, s := range sources {
			roots = append(roots, filepath.Join(dir, "s3", s))
		}
	}
	files, err := worker.LogFiles(roots)
	if err != nil {
		t.Fatal(err)
	}
	testdb.Ingest(t, pg, files)
	r := testdb.Reader(t, url)
	return &bundle{url: url, reader: r, owner: pg}
}

// server starts a LookupEvents server over the bundle's database, with the
// test key, full history, several attributes and no rate limit unless opts
// say otherwise.
func (b *bundle) server(t *testing.T, opts ...func(*lookup.Options)) *httptest.Server {
	t.Helper()
	o := lookup.Options{
		Store:              b.reader,
		Credentials:        lookup.StaticCredentials(map[string]string{testKeyID: testSecret}),
		Rate:               rate.Inf,
		FullHistory:        true,
		MultipleAttributes: true,
		Log:                zaptest.NewLogger(t),
	}
	for _, f := range opts {
		f(&o)
	}
	srv, err := lookup.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return httptestServer(t, srv)
}

// httptestServer serves h until the test ends.
func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// client is the real CloudTrail client of the AWS SDK for Go v2, pointed at
// ts and signing with the given key. It retries only what a user of the SDK
// must retry against AWS too: a response body cut by the SDK's own
// transport ("use of closed network connection" on a 200: aws-sdk-go-v2
// issues 1825 and 2737, seen here under -race about once per few hundred
// pages, with the remedy its maintainers gave there; LookupEvents reads
// only, so a retry is safe). Every error of the server reaches the test as
// the server sent it.
func client(ts *httptest.Server, keyID, secret string) *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(ts.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				return aws.BoolTernary(strings.Contains(err.Error(), "use of closed network connection"))
			})}
		}),
	})
}

// rawRequest is a LookupEvents request built by hand and signed with the
// SDK's signer at the given time (zero: unsigned), for what the SDK client
// will not send: the long X-Amz-Target, stale or tampered signatures,
// invalid bodies.
func rawRequest(t *testing.T, ts *httptest.Server, target, body string, at time.Time, keyID, secret string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	if at.IsZero() {
		return req
	}
	signWith(t, req, body, at, keyID, secret)
	return req
}

// signAt signs r with the test key.
func signAt(t *testing.T, r *http.Request, body string, at time.Time) {
	t.Helper()
	signWith(t, r, body, at, testKeyID, testSecret)
}

func signWith(t *testing.T, r *http.Request, body string, at time.Time, keyID, secret string) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "cloudtrail", testRegion, at); err != nil {
		t.Fatal(err)
	}
}
