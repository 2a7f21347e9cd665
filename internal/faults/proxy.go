// Package faults is a fault-injecting HTTP reverse proxy for tests. It
// stands in front of the local AWS endpoint (internal/localaws) and fails a
// chosen share of S3 and SQS requests the way the real services and the
// networks between them fail: 500 and 503 answers, S3's SlowDown, requests
// that are never answered, connections reset before or in the middle of a
// response body, and bodies that trickle in.
//
// A Proxy forwards every request unchanged (Host header included, so SigV4
// signatures stay valid for emulators that check them) and applies the first
// of its Rules that matches and wins its draw:
//
//	p, err := faults.Start("http://127.0.0.1:4566", 1)
//	p.Set(faults.Rule{Service: faults.S3, Kind: faults.SlowDown, Rate: 0.1})
//	// AWS_ENDPOINT_URL=p.URL ...
//	p.Set() // heal
//
// Requests are told apart by their X-Amz-Target header: SQS's JSON protocol
// names the action there (AmazonSQS.ReceiveMessage, ...); everything else is
// taken for S3.
package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Service is the AWS service a request is meant for.
type Service int

const (
	// Any matches requests for every service.
	Any Service = iota
	// S3 is every request without an SQS X-Amz-Target.
	S3
	// SQS is a JSON-protocol SQS request (X-Amz-Target: AmazonSQS.<Action>).
	SQS
)

func (s Service) String() string {
	switch s {
	case S3:
		return "s3"
	case SQS:
		return "sqs"
	}
	return "any"
}

// Kind is one way of failing a request.
type Kind int

const (
	// InternalError answers 500 InternalError without forwarding.
	InternalError Kind = iota + 1
	// Unavailable answers 503 ServiceUnavailable without forwarding.
	Unavailable
	// SlowDown answers S3's throttling error, 503 SlowDown (for SQS, 400
	// RequestThrottled), without forwarding.
	SlowDown
	// Timeout answers nothing for Rule.Hold (until the client gives up when
	// Hold is 0), then closes the connection.
	Timeout
	// Reset resets the TCP connection before any answer.
	Reset
	// ResetMidBody forwards the request, sends the real answer's headers
	// and the first half of its body, then resets the TCP connection.
	ResetMidBody
	// Stall forwards the request, sends the real answer's headers and the
	// first half of its body, then sends nothing more for Rule.Hold (until
	// the client gives up when Hold is 0) and closes the connection.
	Stall
	// Throttle forwards the request and sends the real answer at
	// Rule.BytesPerSecond.
	Throttle
)

var kindNames = map[Kind]string{
	InternalError: "500", Unavailable: "503", SlowDown: "slowdown", Timeout: "timeout",
	Reset: "reset", ResetMidBody: "reset-mid-body", Stall: "stall", Throttle: "throttle",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Rule says which requests to fail, how, and how often.
type Rule struct {
	// Name labels the rule's count in Injected; empty means
	// "<service> <action or *> <kind>".
	Name string
	// Service restricts the rule to one service; Any matches all.
	Service Service
	// Actions restricts an SQS rule to these actions (ReceiveMessage,
	// DeleteMessageBatch, ChangeMessageVisibility, ...), matched whole:
	// DeleteMessage does not match DeleteMessageBatch. Empty matches all.
	Actions []string
	// PathContains restricts the rule to request paths (for S3,
	// /bucket/key) that contain it; empty matches all.
	PathContains string
	// Kind is the failure.
	Kind Kind
	// Rate is the share of matching requests that fail, from 0 to 1.
	Rate float64
	// Hold is how long Timeout and Stall keep the connection silent;
	// 0 means until the client gives up.
	Hold time.Duration
	// BytesPerSecond is Throttle's rate (default 64 KiB/s).
	BytesPerSecond int
}

func (r *Rule) label() string {
	if r.Name != "" {
		return r.Name
	}
	action := "*"
	if len(r.Actions) > 0 {
		action = strings.Join(r.Actions, ",")
	}
	return fmt.Sprintf("%s %s %s", r.Service, action, r.Kind)
}

func (r *Rule) matches(svc Service, action, path string) bool {
	if r.Service != Any && r.Service != svc {
		return false
	}
	if len(r.Actions) > 0 && !slices.Contains(r.Actions, action) {
		return false
	}
	return r.PathContains == "" || strings.Contains(path, r.PathContains)
}

// Proxy is a running fault-injecting reverse proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	// URL is the proxy's base URL, to use as AWS_ENDPOINT_URL.
	URL string

	target *url.URL
	tr     *http.Transport
	srv    *http.Server
	base   context.CancelFunc

	mu       sync.Mutex
	rules    []Rule
	rng      *rand.Rand
	injected map[string]int64
	requests map[Service]int64
}

// Start starts a proxy on a free loopback port in front of target, such as
// a localaws.Stack's Endpoint. seed makes the draws repeatable.
func Start(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("faults: target %q is not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faults: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		URL:    "http://" + ln.Addr().String(),
		target: u,
		tr: &http.Transport{
			// Pass bodies through as they are.
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
		base:     cancel,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		injected: map[string]int64{},
		requests: map[Service]int64{},
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Set replaces the rules. Set() with none heals the proxy: every request is
// forwarded as it is.
func (p *Proxy) Set(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append([]Rule(nil), rules...)
}

// Injected returns how many requests each rule failed, by label.
func (p *Proxy) Injected() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.injected))
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// Total returns how many requests were failed in all.
func (p *Proxy) Total() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, v := range p.injected {
		n += v
	}
	return n
}

// Requests returns how many requests for svc (Any: all) the proxy received.
func (p *Proxy) Requests(svc Service) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if svc == Any {
		return p.requests[S3] + p.requests[SQS]
	}
	return p.requests[svc]
}

// Close stops the proxy and cuts the connections in flight.
func (p *Proxy) Close() error {
	p.base()
	err := p.srv.Close()
	p.tr.CloseIdleConnections()
	return err
}

// classify tells the service and, for SQS, the action of a request.
func classify(r *http.Request) (Service, string) {
	if action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS."); ok {
		return SQS, action
	}
	return S3, ""
}

// pick counts the request and returns the rule that fails it, if any.
func (p *Proxy) pick(svc Service, action, path string) (Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[svc]++
	for _, r := range p.rules {
		if r.matches(svc, action, path) && r.Rate > 0 && p.rng.Float64() < r.Rate {
			p.injected[r.label()]++
			return r, true
		}
	}
	return Rule{}, false
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	svc, action := classify(r)
	rule, hit := p.pick(svc, action, r.URL.Path)
	if hit {
		switch rule.Kind {
		case InternalError, Unavailable, SlowDown:
			writeError(w, svc, rule.Kind)
			return
		case Timeout:
			_, _ = io.Copy(io.Discard, r.Body)
			hold(r.Context(), rule.Hold)
			closeConn(w, false)
			return
		case Reset:
			closeConn(w, true)
			return
		}
	}
	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, "faults: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if !hit {
		_, _ = io.Copy(flushWriter{w, rc}, resp.Body)
		return
	}
	switch rule.Kind {
	case ResetMidBody, Stall:
		half := resp.ContentLength / 2
		if half <= 0 {
			half = 1
		}
		_, _ = io.CopyN(w, resp.Body, half)
		_ = rc.Flush()
		if rule.Kind == Stall {
			hold(r.Context(), rule.Hold)
		}
		closeConn(w, rule.Kind == ResetMidBody)
	case Throttle:
		throttle(r.Context(), flushWriter{w, rc}, resp.Body, rule.BytesPerSecond)
	default:
		_, _ = io.Copy(flushWriter{w, rc}, resp.Body)
	}
}

// forward sends r to the target and returns its answer.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	out.Host = r.Host
	if r.ContentLength == 0 {
		out.Body = nil
	}
	return p.tr.RoundTrip(out)
}

// writeError answers with the service's error for kind, in its protocol.
func writeError(w http.ResponseWriter, svc Service, kind Kind) {
	status, code := http.StatusInternalServerError, "InternalError"
	switch kind {
	case Unavailable:
		status, code = http.StatusServiceUnavailable, "ServiceUnavailable"
	case SlowDown:
		status, code = http.StatusServiceUnavailable, "SlowDown"
		if svc == SQS {
			status, code = http.StatusBadRequest, "RequestThrottled"
		}
	}
	msg := "injected by faults: " + kind.String()
	if svc == SQS {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-Query-Error", code+";Receiver")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":"com.amazonaws.sqs#%s","message":%q}`, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><RequestId>faults</RequestId></Error>`, code, msg)
}

// hold waits for d, or until the client goes away when d is 0.
func hold(ctx context.Context, d time.Duration) {
	if d <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// closeConn takes over the connection and closes it; with reset, the close
// sends a TCP RST instead of a FIN. What was written and flushed before is
// delivered first.
func closeConn(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// throttle copies src to dst at about bps bytes a second, in tenths.
func throttle(ctx context.Context, dst io.Writer, src io.Reader, bps int) {
	if bps <= 0 {
		bps = 64 << 10
	}
	chunk := max(bps/10, 1)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, chunk)
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// flushWriter flushes after every write, so that long polls and throttled
// bodies reach the client as they come.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if err == nil {
		err = f.rc.Flush()
		if errors.Is(err, http.ErrNotSupported) {
			err = nil
		}
	}
	return n, err
}
