package localaws_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pgtrail/pgtrail/internal/localaws"
)

// writeTree writes files (slash-separated relative path to content) under
// a new temporary directory and returns it.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gzipped returns s compressed with gzip.
func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := io.WriteString(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUploadDir(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	bucket := localaws.UniqueName("trail")
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	const logKey = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/123456789012_CloudTrail_us-east-1_20240501T0000Z_abc.json.gz"
	files := map[string][]byte{
		logKey:       gzipped(t, `{"Records":[]}`),
		"README.txt": []byte("not a log"),
	}
	keys, err := s.UploadDir(ctx, bucket, writeTree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{logKey, "README.txt"}; !slices.Equal(keys, want) {
		t.Fatalf("keys = %q, want %q", keys, want)
	}

	for key, want := range files {
		out, err := s.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes, want %d bytes as uploaded", key, len(got), len(want))
		}
	}
}

func TestClientsFromAWSConfig(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	cfg := s.AWSConfig()
	bucket := localaws.UniqueName("cfg")

	// The endpoint is an IP address, so the SDK picks path-style addressing
	// even without UsePathStyle.
	client := s3.NewFromConfig(cfg)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("a/b.txt"), Body: bytes.NewReader([]byte("hi")),
	}); err != nil {
		t.Fatalf("put: %v", err)
	}
	out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "a/b.txt" {
		t.Errorf("list = %v, want a/b.txt", out.Contents)
	}
}

func TestVirtualHostedBucket(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	bucket := localaws.UniqueName("vhost")
	if err := s.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if _, err := s.S3().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte("virtual")),
	}); err != nil {
		t.Fatalf("put: %v", err)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(s.Endpoint, "http://"), ":")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = bucket + ".localhost:" + port
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "virtual" {
		t.Errorf("GET %s/k = %d %q, want 200 virtual", req.Host, resp.StatusCode, body)
	}
}
