// Package web serves pgtrail's event-history page: the events of a time
// range under combined filters, one record in full, the open alerts and an
// activity chart, for people who do not write SQL (docs/web.md).
//
// Handler serves the page's static assets (embedded, assets/) and a small
// JSON API under /api/ that the page's script calls. Everything but the
// assets and the login needs a session, which the login form opens with an
// access key of the API's credentials file (session.go). The page is
// read-only by construction: every query goes through a Store, which is
// sink.Reader (the reader role, read-only transactions), and no endpoint
// changes anything but the caller's own session.
//
// Records are attacker-controlled text: the script puts them in the page
// with textContent and createElement only, and every response carries a
// Content-Security-Policy that allows no inline script or style and no
// framing.
package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/sink"
)

// Store answers the page's queries; sink.Reader is the real one.
type Store interface {
	HistoryEvents(ctx context.Context, q sink.HistoryQuery) ([]sink.HistoryEvent, error)
	CountHistory(ctx context.Context, f sink.HistoryFilter, limit int64) (int64, bool, error)
	HistoryActivity(ctx context.Context, f sink.HistoryFilter, bucket time.Duration) ([]sink.ActivityBucket, error)
	HistoryRecord(ctx context.Context, id string, at time.Time) (*sink.HistoryRecord, error)
	OpenAlerts(ctx context.Context, perRule int) ([]sink.OpenAlert, error)
}

var _ Store = (*sink.Reader)(nil)

// Keys checks the access keys that may log in; lookup.Credentials is the
// real one, so that the page takes the API's keys.
type Keys interface {
	Verify(id, secret string) bool
	Known(id string) bool
}

// Options configure a Handler.
type Options struct {
	Store Store
	Keys  Keys
	// SessionTTL is how long a session lasts without use; zero means 30
	// minutes. No session outlives MaxSession (zero: 12 hours).
	SessionTTL, MaxSession time.Duration
	// SecureCookie marks the session cookie Secure even on plain HTTP: for a
	// TLS-terminating proxy in front. Over TLS it is always Secure.
	SecureCookie bool
	// QueryTimeout bounds one query; zero means 30 s.
	QueryTimeout time.Duration
	Log          *zap.Logger
	// Now is the clock the time range presets count back from; nil means
	// time.Now.
	Now func() time.Time
}

// Handler is the page and its API, an http.Handler safe for concurrent use.
type Handler struct {
	o        Options
	mux      *http.ServeMux
	sessions *sessions
	assets   *assets
}

// New checks o and returns a Handler.
func New(o Options) (*Handler, error) {
	if o.Store == nil || o.Keys == nil {
		return nil, errors.New("web: a store and keys are required")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 30 * time.Minute
	}
	if o.MaxSession <= 0 {
		o.MaxSession = 12 * time.Hour
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	h := &Handler{o: o, mux: http.NewServeMux(), sessions: newSessions(o.SessionTTL, o.MaxSession), assets: a}
	h.mux.HandleFunc("GET /{$}", a.serve("index.html"))
	h.mux.HandleFunc("GET /static/{name}", func(w http.ResponseWriter, r *http.Request) { a.serve(r.PathValue("name"))(w, r) })
	h.mux.HandleFunc("GET /api/session", h.session)
	h.mux.HandleFunc("POST /api/login", h.login)
	h.mux.HandleFunc("POST /api/logout", h.logout)
	h.mux.Handle("GET /api/events", h.authed(h.events))
	h.mux.Handle("GET /api/count", h.authed(h.count))
	h.mux.Handle("GET /api/activity", h.authed(h.activity))
	h.mux.Handle("GET /api/event", h.authed(h.event))
	h.mux.Handle("GET /api/alerts", h.authed(h.alerts))
	return h, nil
}

// csp allows the page's own script, style and data and nothing else: no
// inline script or style, no plugins, no framing, no other origin.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ServeHTTP sets the security headers of every response and routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.TLS != nil {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	h.mux.ServeHTTP(w, r)
}
