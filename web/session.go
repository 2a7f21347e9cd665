package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// cookieName is the session cookie's.
const cookieName = "pgtrail_session"

// session is one logged-in browser: the access key it logged in with, and
// when it ends.
type session struct {
	key        string
	idle, hard time.Time
}

// sessions is the server-side store: a cookie holds only a random ID
// (32 bytes) that names a session here, so that logging out or removing a
// key ends a session at once, and a restart ends them all.
type sessions struct {
	ttl, max time.Duration

	mu sync.Mutex
	m  map[string]*session

	// logins limits login attempts, against guessing secrets.
	logins *rate.Limiter
}

func newSessions(ttl, max time.Duration) *sessions {
	return &sessions{ttl: ttl, max: max, m: map[string]*session{}, logins: rate.NewLimiter(2, 10)}
}

// open starts a session for key and returns its ID.
func (s *sessions) open(key string, now time.Time) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m { // sweep: sessions are few
		if now.After(v.idle) || now.After(v.hard) {
			delete(s.m, k)
		}
	}
	s.m[id] = &session{key: key, idle: now.Add(s.ttl), hard: now.Add(s.max)}
	return id
}

// get returns the key of the session id and extends its idle time, or ""
// when it has ended.
func (s *sessions) get(id string, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[id]
	if v == nil {
		return ""
	}
	if now.After(v.idle) || now.After(v.hard) {
		delete(s.m, id)
		return ""
	}
	v.idle = now.Add(s.ttl)
	return v.key
}

func (s *sessions) close(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

type ctxKey struct{}

// authed runs next for a request of a live session whose key is still in
// force, and answers 401 to any other.
func (h *Handler) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := h.sessionKey(r)
		if key == "" {
			writeError(w, http.StatusUnauthorized, "log in first")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, key)))
	})
}

// sessionKey is the access key of the request's session, or "".
func (h *Handler) sessionKey(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	key := h.sessions.get(c.Value, h.o.Now())
	if key == "" || !h.o.Keys.Known(key) {
		h.sessions.close(c.Value)
		return ""
	}
	return key
}

// session tells the page who is logged in: 200 with the access key, or 401.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	key := h.sessionKey(r)
	if key == "" {
		writeError(w, http.StatusUnauthorized, "log in first")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"accessKeyId": key})
}

// sameOrigin guards the two requests that change state (login, logout)
// against cross-site forgery, besides the cookie's SameSite=Strict: the
// host of the browser's Origin must be the one the request was sent to
// (a proxy in front must pass Host on), or, from a browser that sends no
// Origin, Sec-Fetch-Site must say same-origin. A request with neither is
// refused.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Host != "" && u.Host == r.Host
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// login checks an access key ID and secret and opens a session. It takes
// JSON only, which a cross-site HTML form cannot send.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send JSON")
		return
	}
	if !h.sessions.logins.Allow() {
		writeError(w, http.StatusTooManyRequests, "too many login attempts; wait a few seconds")
		return
	}
	var req struct {
		AccessKeyID string `json:"accessKeyId"`
		Secret      string `json:"secret"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "want {accessKeyId, secret}")
		return
	}
	log := h.o.Log.With(zap.String("access_key_id", req.AccessKeyID), zap.String("remote", r.RemoteAddr))
	if !h.o.Keys.Verify(req.AccessKeyID, req.Secret) {
		log.Info("web login refused")
		writeError(w, http.StatusUnauthorized, "unknown access key or wrong secret")
		return
	}
	id := h.sessions.open(req.AccessKeyID, h.o.Now())
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: "/",
		MaxAge:   int(h.o.MaxSession.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || h.o.SecureCookie,
	})
	log.Info("web login")
	writeJSON(w, http.StatusOK, map[string]string{"accessKeyId": req.AccessKeyID})
}

// logout ends the session and clears the cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	if c, err := r.Cookie(cookieName); err == nil {
		h.sessions.close(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || h.o.SecureCookie})
	w.WriteHeader(http.StatusNoContent)
}
