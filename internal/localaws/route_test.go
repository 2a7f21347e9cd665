package localaws

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIsGoawsRequest(t *testing.T) {
	t.Parallel()
	signed := func(service string) string {
		return "AWS4-HMAC-SHA256 Credential=test/20240501/us-east-1/" + service +
			"/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
	}
	tests := []struct {
		name   string
		method string
		target string
		header map[string]string
		want   bool
	}{
		{"signed sqs", "POST", "/", map[string]string{"Authorization": signed("sqs")}, true},
		{"signed sns", "POST", "/", map[string]string{"Authorization": signed("sns")}, true},
		{"signed s3 put", "PUT", "/bucket/key", map[string]string{"Authorization": signed("s3")}, false},
		{"signed s3 form post", "POST", "/bucket", map[string]string{
			"Authorization": signed("s3"), "Content-Type": "application/x-www-form-urlencoded",
		}, false},
		{"presigned s3 get", "GET", "/bucket/key?X-Amz-Credential=test%2F20240501%2Fus-east-1%2Fs3%2Faws4_request", nil, false},
		{"unsigned sqs json", "POST", "/", map[string]string{
			"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0",
		}, true},
		{"unsigned query post", "POST", "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, true},
		{"unsigned query get", "GET", "/?Action=ListTopics", nil, true},
		{"sns signing cert", "GET", "/SimpleNotificationService/abc.pem", nil, true},
		{"unsigned s3 list buckets", "GET", "/", nil, false},
		{"unsigned s3 get", "GET", "/bucket/key", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(""))
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if got := isGoawsRequest(r); got != tt.want {
				t.Errorf("isGoawsRequest = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:4566": true,
		"127.1.2.3:0":    true,
		"[::1]:4566":     true,
		"localhost:4566": true,
		":4566":          false,
		"0.0.0.0:4566":   false,
		"[::]:4566":      false,
		"192.168.1.2:80": false,
		"example.com:80": false,
		"127.0.0.1":      false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}

func TestGuardRejectsMalformedTarget(t *testing.T) {
	t.Parallel()
	g := newGuard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("malformed request reached goaws")
	}))
	r := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
	r.Header.Set("Content-Type", "application/x-amz-json-1.0")
	r.Header.Set("X-Amz-Target", "ListQueues")
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", w.Code)
	}
}
