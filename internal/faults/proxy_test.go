package faults_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/internal/faults"
)

// upstream answers every request with a 64 KiB body and its X-Amz-Target.
func upstream(t *testing.T) (*httptest.Server, []byte) {
	t.Helper()
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("X-Target", r.Header.Get("X-Amz-Target"))
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, body
}

func start(t *testing.T, target string) *faults.Proxy {
	t.Helper()
	p, err := faults.Start(target, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// get sends one request through the proxy, as S3 (no target) or SQS.
func get(t *testing.T, p *faults.Proxy, path, target string, timeout time.Duration) (*http.Response, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+path, strings.NewReader("{}"))
	if target != "" {
		req.Header.Set("X-Amz-Target", "AmazonSQS."+target)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestForwardsWhenHealthy(t *testing.T) {
	t.Parallel()
	up, body := upstream(t)
	p := start(t, up.URL)
	resp, got, err := get(t, p, "/bucket/key", "ReceiveMessage", 5*time.Second)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("healthy proxy: %v, %d bytes, %v", resp, len(got), err)
	}
	if resp.Header.Get("X-Target") != "AmazonSQS.ReceiveMessage" {
		t.Errorf("headers not forwarded: %v", resp.Header)
	}
	if p.Requests(faults.SQS) != 1 || p.Total() != 0 {
		t.Errorf("requests %d, injected %d; want 1, 0", p.Requests(faults.SQS), p.Total())
	}
}

func TestKinds(t *testing.T) {
	t.Parallel()
	up, body := upstream(t)
	cases := []struct {
		kind   faults.Kind
		target string
		check  func(resp *http.Response, got []byte, err error) string
	}{
		{faults.InternalError, "", status(500, "<Code>InternalError</Code>")},
		{faults.Unavailable, "DeleteMessageBatch", status(503, `"__type":"com.amazonaws.sqs#ServiceUnavailable"`)},
		{faults.SlowDown, "", status(503, "<Code>SlowDown</Code>")},
		{faults.SlowDown, "ReceiveMessage", status(400, "RequestThrottled")},
		{faults.Timeout, "", failed},
		{faults.Reset, "", failed},
		{faults.ResetMidBody, "", func(resp *http.Response, got []byte, err error) string {
			if resp == nil || resp.StatusCode != 200 {
				return "want the real headers before the reset"
			}
			if err == nil || len(got) >= len(body) {
				return "want a body cut short with an error"
			}
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return "want a reset, got " + err.Error()
			}
			return ""
		}},
		{faults.Stall, "", func(resp *http.Response, got []byte, err error) string {
			if resp == nil || err == nil || len(got) >= len(body) {
				return "want headers, then a body cut short"
			}
			return ""
		}},
		{faults.Throttle, "", func(resp *http.Response, got []byte, err error) string {
			if err != nil || !bytes.Equal(got, body) {
				return "want the whole body, slowly"
			}
			return ""
		}},
	}
	for _, c := range cases {
		t.Run(c.kind.String()+"-"+c.target, func(t *testing.T) {
			t.Parallel()
			p := start(t, up.URL)
			svc := faults.S3
			if c.target != "" {
				svc = faults.SQS
			}
			// 64 KiB at 256 KiB/s: three tenths of a second.
			p.Set(faults.Rule{Service: svc, Kind: c.kind, Rate: 1, Hold: 200 * time.Millisecond, BytesPerSecond: 256 << 10})
			start := time.Now()
			resp, got, err := get(t, p, "/bucket/key", c.target, 5*time.Second)
			if msg := c.check(resp, got, err); msg != "" {
				t.Fatalf("%s: %s (status %v, %d bytes, err %v)", c.kind, msg, resp, len(got), err)
			}
			if c.kind == faults.Throttle && time.Since(start) < 150*time.Millisecond {
				t.Errorf("throttled body came in %s", time.Since(start))
			}
			if p.Total() != 1 {
				t.Errorf("injected %v, want one", p.Injected())
			}
		})
	}
}

func status(code int, fragment string) func(*http.Response, []byte, error) string {
	return func(resp *http.Response, got []byte, err error) string {
		if err != nil || resp.StatusCode != code || !bytes.Contains(got, []byte(fragment)) {
			return "want " + strconv.Itoa(code) + " with " + fragment
		}
		return ""
	}
}

func failed(resp *http.Response, _ []byte, err error) string {
	if err == nil {
		return "want a transport error"
	}
	return ""
}

func TestRulesMatchAndRate(t *testing.T) {
	t.Parallel()
	up, _ := upstream(t)
	p := start(t, up.URL)
	p.Set(
		faults.Rule{Name: "delete", Service: faults.SQS, Actions: []string{"DeleteMessageBatch"}, Kind: faults.InternalError, Rate: 1},
		faults.Rule{Name: "big", Service: faults.S3, PathContains: "/big", Kind: faults.Unavailable, Rate: 0.5},
	)
	for range 200 {
		resp, _, err := get(t, p, "/bucket/big.json.gz", "", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 && resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Actions match whole: a rule for DeleteMessageBatch leaves DeleteMessage be.
	for _, target := range []string{"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch"} {
		resp, _, err := get(t, p, "/", target, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"ReceiveMessage": 200, "DeleteMessage": 200, "DeleteMessageBatch": 500}[target]; resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", target, resp.StatusCode, want)
		}
	}
	got := p.Injected()
	if got["delete"] != 1 || got["big"] < 70 || got["big"] > 130 {
		t.Errorf("injected %v; want delete 1 and big about 100 of 200", got)
	}
	p.Set()
	if resp, _, err := get(t, p, "/bucket/big.json.gz", "", 5*time.Second); err != nil || resp.StatusCode != 200 {
		t.Errorf("healed proxy: %v, %v", resp, err)
	}
}
