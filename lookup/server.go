// Package lookup serves CloudTrail's LookupEvents API over pgtrail's
// PostgreSQL, so that the AWS CLI, the SDKs and the tools built on them
// query the whole stored history by changing their endpoint URL
// (docs/lookup.md).
//
// Server speaks the AWS JSON 1.1 protocol for LookupEvents only: POST /,
// Content-Type application/x-amz-json-1.1, X-Amz-Target
// CloudTrail_20131101.LookupEvents (the Go SDK's form) or
// com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents
// (botocore's). Every request must carry an AWS Signature Version 4 made
// with a key of the credentials file (sigv4.go, credentials.go); each key is
// rate-limited. Answers come from a sink.Reader, which runs as the reader
// role; NextToken is keyset state authenticated with an HMAC (token.go).
package lookup

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/pgtrail/pgtrail/sink"
)

// Store answers one page of a lookup; sink.Reader is the real one.
type Store interface {
	LookupEvents(ctx context.Context, q sink.LookupQuery) ([]sink.LookupEvent, error)
}

var _ Store = (*sink.Reader)(nil)

// AWSWindow is how far back CloudTrail's own LookupEvents reaches.
const AWSWindow = 90 * 24 * time.Hour

// The X-Amz-Target values of LookupEvents: the SDKs' short form and the
// long form of botocore and the AWS CLI.
const (
	targetPrefix     = "CloudTrail_20131101."
	longTargetPrefix = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
	operation        = "LookupEvents"
)

// maxBody caps a request body: a LookupEvents request is a few hundred
// bytes.
const maxBody = 64 << 10

// Options configure a Server.
type Options struct {
	// Store answers the lookups.
	Store Store
	// Credentials are the keys that may sign requests.
	Credentials *Credentials
	// TokenKey authenticates NextTokens: at least 32 bytes, the same on
	// every server behind one endpoint. Empty means a random key, so that
	// tokens do not survive a restart.
	TokenKey []byte
	// Rate is the requests per second each key may make, Burst at once.
	// Zero means CloudTrail's 2 per second (burst 2); rate.Inf lifts the
	// limit (beyond AWS, opt-in).
	Rate  rate.Limit
	Burst int
	// FullHistory lifts CloudTrail's 90-day window: StartTime may reach any
	// stored event, and without StartTime a lookup reaches them all (beyond
	// AWS, opt-in).
	FullHistory bool
	// MultipleAttributes accepts more than one LookupAttributes entry, all
	// of which an event must match (beyond AWS, opt-in).
	MultipleAttributes bool
	// QueryTimeout bounds one page's query; zero means 30 s.
	QueryTimeout time.Duration
	// Log gets one line per request, with the key that made it.
	Log *zap.Logger
	// Page, when set, answers every request but POST / (the API's): the
	// event-history web page (package web), on the API's listener.
	Page http.Handler
	// Now is the clock that the 90-day window counts back from and that
	// NextTokens expire by; nil means time.Now. Tests set it. Signatures
	// are always checked against time.Now.
	Now func() time.Time
}

// Server is the LookupEvents endpoint, an http.Handler. It is safe for
// concurrent use.
type Server struct {
	o      Options
	tokens tokenCodec

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // by access key ID
}

// New checks o and returns a Server.
func New(o Options) (*Server, error) {
	if o.Store == nil || o.Credentials == nil {
		return nil, errors.New("lookup: a store and credentials are required")
	}
	if len(o.TokenKey) == 0 {
		o.TokenKey = make([]byte, 32)
		_, _ = rand.Read(o.TokenKey)
	} else if len(o.TokenKey) < 32 {
		return nil, fmt.Errorf("lookup: the NextToken key has %d bytes, want at least 32", len(o.TokenKey))
	}
	if o.Rate == 0 {
		o.Rate, o.Burst = 2, 2
	}
	if o.Burst < 1 {
		o.Burst = max(1, int(o.Rate))
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
	return &Server{o: o, tokens: tokenCodec{key: o.TokenKey}, limiters: map[string]*rate.Limiter{}}, nil
}

// Reload reads the credentials file again: keys added work at once, keys
// removed are refused from the next request on. On error the keys in force
// stay.
func (s *Server) Reload() error {
	return s.o.Credentials.Reload()
}

// Log keys.
const (
	logAccessKey = "access_key_id"
	logTarget    = "target"
	logError     = "error_code"
	logEvents    = "events"
	logAttrs     = "attributes"
	logDuration  = "duration"
	logRemote    = "remote"
)

// ServeHTTP answers one request: the signature first, then the rate limit,
// the operation, the request's validation, and the query.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.o.Page != nil && (r.Method != http.MethodPost || r.URL.Path != "/") {
		s.o.Page.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	log := s.o.Log.With(zap.String(logRemote, r.RemoteAddr))
	requestID := newRequestID()
	w.Header().Set("X-Amzn-RequestId", requestID)

	key, resp, apiErr := s.serve(r)
	log = log.With(zap.String(logAccessKey, key), zap.Duration(logDuration, time.Since(start)))
	if apiErr != nil {
		if apiErr == errInternal {
			log.Error("lookup failed", zap.String(logError, apiErr.Code))
		} else {
			log.Info("lookup refused", zap.String(logError, apiErr.Code), zap.String("message", apiErr.Message))
		}
		writeError(w, apiErr)
		return
	}
	log.Info("lookup", zap.Int(logEvents, len(resp.Events)), zap.Any(logAttrs, resp.attrs))
	writeJSON(w, http.StatusOK, resp)
}

// writeJSON sends v with its length, in one write.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"InternalFailure","message":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serve is ServeHTTP without the writing: it returns the access key that
// signed the request (once known) and the answer or the error.
func (s *Server) serve(r *http.Request) (string, *response, *apiError) {
	if r.Method != http.MethodPost {
		return "", nil, errUnknownOperation("pgtrail answers POST / only.")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return "", nil, errSerialization("The request body could not be read, or is over 64 KiB.")
	}
	key, apiErr := verify(r, body, s.o.Credentials, time.Now())
	if apiErr != nil {
		if key != "" {
			key = "claimed:" + key // not proven: logged, never rate-limited
		}
		return key, nil, apiErr
	}
	if !s.limiter(key).Allow() {
		return key, nil, errThrottled
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if !ok {
		op, ok = strings.CutPrefix(target, longTargetPrefix)
	}
	switch {
	case !ok:
		return key, nil, errUnknownOperation(fmt.Sprintf("Unknown X-Amz-Target %q.", target))
	case op != operation:
		return key, nil, errUnsupportedOperation(fmt.Sprintf("pgtrail serves LookupEvents only, not %s.", op))
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-amz-json-1.1" && mt != "application/x-amz-json-1.0" {
		return key, nil, errSerialization("Content-Type must be application/x-amz-json-1.1.")
	}
	var req request
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return key, nil, errSerialization("The request body is not a LookupEvents request: " + err.Error())
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.QueryTimeout)
	defer cancel()
	resp, apiErr := s.lookup(ctx, key, &req)
	return key, resp, apiErr
}

// limiter returns the rate limiter of an access key.
func (s *Server) limiter(key string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limiters[key]
	if l == nil {
		l = rate.NewLimiter(s.o.Rate, s.o.Burst)
		s.limiters[key] = l
	}
	return l
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	writeJSON(w, e.Status, map[string]string{"__type": e.Code, "message": e.Message})
}

// newRequestID is a random ID in the form of AWS's request IDs.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := fmt.Sprintf("%x", b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ListenAndServe serves on addr until ctx ends, over TLS when certFile and
// keyFile are given, then lets requests in flight finish for up to 10 s.
func (s *Server) ListenAndServe(ctx context.Context, addr, certFile, keyFile string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("lookup: listen: %w", err)
	}
	return s.Serve(ctx, ln, certFile, keyFile)
}

// Serve is ListenAndServe on a listener of the caller's.
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.o.QueryTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() {
		if certFile != "" || keyFile != "" {
			done <- hs.ServeTLS(ln, certFile, keyFile)
		} else {
			done <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return fmt.Errorf("lookup: serve: %w", err)
	case <-ctx.Done():
	}
	s.o.Log.Info("stopping the LookupEvents server")
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(grace); err != nil {
		return fmt.Errorf("lookup: shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("lookup: serve: %w", err)
	}
	return nil
}

// epochSeconds is a time as the JSON 1.1 protocol writes timestamps: seconds
// since the epoch, a number, with milliseconds when there are any.
type epochSeconds time.Time

func (t epochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	if ms%1000 == 0 {
		return strconv.AppendInt(nil, ms/1000, 10), nil
	}
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', 3, 64), nil
}
