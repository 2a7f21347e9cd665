package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/web"
)

// fakeStore answers every query with nothing and records the page queries
// it was asked, for the tests of the HTTP side, which need no database.
type fakeStore struct {
	mu      sync.Mutex
	queries []sink.HistoryQuery
}

func (f *fakeStore) HistoryEvents(_ context.Context, q sink.HistoryQuery) ([]sink.HistoryEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	return nil, nil
}

func (f *fakeStore) CountHistory(context.Context, sink.HistoryFilter, int64) (int64, bool, error) {
	return 0, false, nil
}

func (f *fakeStore) HistoryActivity(context.Context, sink.HistoryFilter, time.Duration) ([]sink.ActivityBucket, error) {
	return nil, nil
}

func (f *fakeStore) HistoryRecord(context.Context, string, time.Time) (*sink.HistoryRecord, error) {
	return nil, sink.ErrNotFound
}

func (f *fakeStore) OpenAlerts(context.Context, int) ([]sink.OpenAlert, error) { return nil, nil }

// keySet is a Keys whose keys a test may remove.
type keySet struct {
	mu   sync.Mutex
	keys map[string]string
}

func (k *keySet) Verify(id, secret string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.keys[id]
	return ok && s == secret
}

func (k *keySet) Known(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.keys[id]
	return ok
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type httpBundle struct {
	ts    *httptest.Server
	store *fakeStore
	keys  *keySet
	clock *clock
}

func newHTTP(t *testing.T, secure bool) *httpBundle {
	t.Helper()
	b := &httpBundle{store: &fakeStore{}, keys: &keySet{keys: map[string]string{testKeyID: testSecret}},
		clock: &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}
	h, err := web.New(web.Options{Store: b.store, Keys: b.keys, Log: zaptest.NewLogger(t), Now: b.clock.now,
		SessionTTL: 10 * time.Minute, MaxSession: time.Hour, SecureCookie: secure})
	if err != nil {
		t.Fatal(err)
	}
	api, err := lookup.New(lookup.Options{Store: b.store.lookup(), Credentials: lookup.StaticCredentials(map[string]string{testKeyID: testSecret}), Page: h})
	if err != nil {
		t.Fatal(err)
	}
	b.ts = httptest.NewServer(api)
	t.Cleanup(b.ts.Close)
	return b
}

// lookup is a LookupEvents store that answers nothing.
func (f *fakeStore) lookup() lookup.Store { return lookupNone{} }

type lookupNone struct{}

func (lookupNone) LookupEvents(context.Context, sink.LookupQuery) ([]sink.LookupEvent, error) {
	return nil, nil
}

// do sends a request with the given headers and returns the response and
// its body.
func (b *httpBundle) do(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, b.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// login logs in with the given secret and returns the session cookie.
func (b *httpBundle) login(t *testing.T, secret string) (*http.Response, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"accessKeyId": testKeyID, "secret": secret})
	resp, _ := b.do(t, http.MethodPost, "/api/login", string(body), map[string]string{"Origin": b.ts.URL, "Content-Type": "application/json"})
	for _, c := range resp.Cookies() {
		if c.Name == "pgtrail_session" {
			return resp, c.Name + "=" + c.Value
		}
	}
	return resp, ""
}

func TestHeaders(t *testing.T) {
	b := newHTTP(t, false)
	for _, path := range []string{"/", "/static/app.js", "/static/app.css", "/api/events", "/api/session", "/nope"} {
		resp, _ := b.do(t, http.MethodGet, path, "", nil)
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %s", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline or eval", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: X-Content-Type-Options %q, X-Frame-Options %q", path, resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("X-Frame-Options"))
		}
	}
	resp, body := b.do(t, http.MethodGet, "/", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if regexp.MustCompile(`<script>|<style|\sstyle=|\son[a-z]+=`).MatchString(body) {
		t.Error("the page has inline script or style")
	}
	if resp, _ := b.do(t, http.MethodGet, "/static/app.js", "", map[string]string{"If-None-Match": resp.Header.Get("ETag")}); resp.StatusCode != http.StatusOK {
		t.Errorf("app.js with the page's ETag: %s, want 200 (its own ETag differs)", resp.Status)
	}
	js, _ := b.do(t, http.MethodGet, "/static/app.js", "", nil)
	if again, _ := b.do(t, http.MethodGet, "/static/app.js", "", map[string]string{"If-None-Match": js.Header.Get("ETag")}); again.StatusCode != http.StatusNotModified {
		t.Errorf("app.js revalidated: %s, want 304", again.Status)
	}
}

// TestAPIStays checks that the LookupEvents API still answers POST / on the
// page's listener, with its own error shape.
func TestAPIStays(t *testing.T) {
	b := newHTTP(t, false)
	resp, body := b.do(t, http.MethodPost, "/", "{}", map[string]string{
		"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CloudTrail_20131101.LookupEvents"})
	if resp.StatusCode == http.StatusOK || !strings.Contains(body, `"__type"`) {
		t.Errorf("unsigned LookupEvents: %s %s, want AWS's error shape", resp.Status, body)
	}
}

func TestLogin(t *testing.T) {
	b := newHTTP(t, false)
	if resp, _ := b.do(t, http.MethodGet, "/api/events", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("events without a session: %s, want 401", resp.Status)
	}
	good := `{"accessKeyId":"` + testKeyID + `","secret":"` + testSecret + `"}`
	for _, c := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"cross-origin", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json"}, http.StatusForbidden},
		{"no origin", map[string]string{"Content-Type": "application/json"}, http.StatusForbidden},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, http.StatusForbidden},
		{"form", map[string]string{"Origin": b.ts.URL, "Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}, http.StatusOK},
	} {
		if resp, body := b.do(t, http.MethodPost, "/api/login", good, c.hdr); resp.StatusCode != c.want {
			t.Errorf("%s login: %s %s, want %d", c.name, resp.Status, body, c.want)
		}
	}
	if resp, cookie := b.login(t, "wrong"); resp.StatusCode != http.StatusUnauthorized || cookie != "" {
		t.Fatalf("wrong secret: %s, cookie %q", resp.Status, cookie)
	}
	resp, cookie := b.login(t, testSecret)
	if resp.StatusCode != http.StatusOK || cookie == "" {
		t.Fatalf("login: %s, cookie %q", resp.Status, cookie)
	}
	set := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(set, want) {
			t.Errorf("cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("cookie %q is Secure on plain HTTP without SecureCookie", set)
	}
	auth := map[string]string{"Cookie": cookie}
	if resp, body := b.do(t, http.MethodGet, "/api/events?range=week&user=alice&region=eu-west-1&error=*&q=Put&limit=10", "", auth); resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %s %s", resp.Status, body)
	}
	q := b.store.queries[len(b.store.queries)-1]
	if q.Limit != 11 || q.Region != "eu-west-1" || q.ErrorCode != "*" || q.NameContains != "Put" ||
		len(q.Attributes) != 1 || q.Attributes[0] != (sink.LookupAttribute{Key: sink.AttrUsername, Value: "alice"}) ||
		!q.End.Equal(b.clock.now()) || !q.Start.Equal(b.clock.now().Add(-7*24*time.Hour)) {
		t.Errorf("the store was asked %+v", q)
	}
	for _, bad := range []string{"range=year", "limit=0", "limit=100000", "older=yesterday", "from=later", "range=custom&from=2025-01-02&to=2025-01-01",
		"older=2025-01-01T00:00:00Z,a&newer=2025-01-01T00:00:00Z,b"} {
		if resp, body := b.do(t, http.MethodGet, "/api/events?"+bad, "", auth); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %s %s, want 400 with the reason", bad, resp.Status, body)
		}
	}
	if resp, _ := b.do(t, http.MethodGet, "/api/event?id=x&at=2025-01-01T00:00:00Z", "", auth); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing event: %s, want 404", resp.Status)
	}

	// Idle past the TTL: the session is gone.
	b.clock.add(11 * time.Minute)
	if resp, _ := b.do(t, http.MethodGet, "/api/session", "", auth); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the TTL: %s, want 401", resp.Status)
	}
	// Used within the TTL, it lives until MaxSession.
	_, cookie = b.login(t, testSecret)
	auth = map[string]string{"Cookie": cookie}
	for range 6 {
		b.clock.add(9 * time.Minute)
		if resp, _ := b.do(t, http.MethodGet, "/api/session", "", auth); resp.StatusCode != http.StatusOK {
			t.Fatalf("within the TTL: %s", resp.Status)
		}
	}
	b.clock.add(9 * time.Minute)
	if resp, _ := b.do(t, http.MethodGet, "/api/session", "", auth); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("past MaxSession: %s, want 401", resp.Status)
	}
	// A removed key ends its sessions.
	_, cookie = b.login(t, testSecret)
	auth = map[string]string{"Cookie": cookie}
	b.keys.mu.Lock()
	delete(b.keys.keys, testKeyID)
	b.keys.mu.Unlock()
	if resp, _ := b.do(t, http.MethodGet, "/api/session", "", auth); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the key's removal: %s, want 401", resp.Status)
	}
}

func TestLogout(t *testing.T) {
	b := newHTTP(t, true)
	resp, cookie := b.login(t, testSecret)
	if !strings.Contains(resp.Header.Get("Set-Cookie"), "Secure") {
		t.Errorf("cookie %q is not Secure with SecureCookie", resp.Header.Get("Set-Cookie"))
	}
	auth := map[string]string{"Cookie": cookie}
	if resp, _ := b.do(t, http.MethodPost, "/api/logout", "", map[string]string{"Cookie": cookie, "Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin logout: %s, want 403", resp.Status)
	}
	if resp, _ := b.do(t, http.MethodGet, "/api/session", "", auth); resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %s", resp.Status)
	}
	if resp, _ := b.do(t, http.MethodPost, "/api/logout", "", map[string]string{"Cookie": cookie, "Origin": b.ts.URL}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %s", resp.Status)
	}
	if resp, _ := b.do(t, http.MethodGet, "/api/session", "", auth); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: %s, want 401", resp.Status)
	}
}
