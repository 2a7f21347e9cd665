package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
)

// stops records what the actors did, in order.
type stops struct {
	mu   sync.Mutex
	seen []string
}

func (s *stops) add(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, what)
}

func (s *stops) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// listWithHTTP is list once the HTTP server's shutdown is recorded:
// http.Server runs its shutdown hooks on goroutines of their own.
func (s *stops) listWithHTTP() []string {
	for range 100 {
		if l := s.list(); slices.Contains(l, "http") {
			return l
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s.list()
}

// healthz returns the status of /healthz on addr; 0 when nothing answers.
func healthz(addr string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// testDaemon is a daemon with pgtrail's HTTP server on a free port, and a
// consumer and retention that record when they stop and whether /healthz
// answers then.
func testDaemon(t *testing.T, s *stops, consume func(context.Context) error) (*daemon, string) {
	t.Helper()
	addr := freeAddr(t)
	srv, ln, err := listenHTTP(addr, prometheus.NewRegistry(), nil, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.RegisterOnShutdown(func() { s.add("http") })
	return &daemon{
		consume: consume,
		retention: func(ctx context.Context) {
			<-ctx.Done()
			s.add("retention")
			if code := healthz(addr); code != http.StatusOK {
				s.add("retention: /healthz did not answer")
			}
		},
		http: srv,
		ln:   ln,
	}, addr
}

// TestDaemonStopOrder: when the consumer returns (a -drain run found the
// queue empty), retention stops, then the HTTP server, which answered
// until then.
func TestDaemonStopOrder(t *testing.T) {
	t.Parallel()
	var s stops
	ready := make(chan struct{})
	d, addr := testDaemon(t, &s, func(context.Context) error {
		<-ready
		s.add("consumer")
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- d.run(t.Context()) }()
	if code := waitHealthz(t, addr); code != http.StatusOK {
		t.Fatalf("/healthz = %d before any stop", code)
	}
	close(ready)
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if got, want := s.listWithHTTP(), []string{"consumer", "retention", "http"}; !slices.Equal(got, want) {
		t.Errorf("stopped %q, want %q", got, want)
	}
	if code := healthz(addr); code != 0 {
		t.Errorf("/healthz = %d after run returned", code)
	}
}

// TestDaemonHTTPAnswersDuringDrain: on SIGTERM the consumer drains its
// messages in flight while /healthz still answers, and the run ends
// without an error.
func TestDaemonHTTPAnswersDuringDrain(t *testing.T) {
	t.Parallel()
	var (
		s    stops
		addr string
		d    *daemon
	)
	d, addr = testDaemon(t, &s, func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // the messages in flight
		if code := healthz(addr); code != http.StatusOK {
			s.add("consumer: /healthz did not answer during the drain")
		}
		s.add("consumer")
		return nil
	})
	ctx, sigterm := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	waitHealthz(t, addr)
	sigterm()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	got := s.listWithHTTP()
	if slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "did not answer") }) {
		t.Errorf("%q", got)
	}
	if len(got) == 0 || got[len(got)-1] != "http" || !slices.Contains(got, "consumer") {
		t.Errorf("stopped %q, want the consumer and HTTP last", got)
	}
}

// TestDaemonActorErrorStopsAll: an actor's error stops the others and is
// the run's.
func TestDaemonActorErrorStopsAll(t *testing.T) {
	t.Parallel()
	t.Run("consumer", func(t *testing.T) {
		t.Parallel()
		var s stops
		boom := errors.New("boom")
		d, _ := testDaemon(t, &s, func(context.Context) error { return boom })
		if err := d.run(t.Context()); !errors.Is(err, boom) {
			t.Errorf("run: %v, want boom", err)
		}
		if got, want := s.listWithHTTP(), []string{"retention", "http"}; !slices.Equal(got, want) {
			t.Errorf("stopped %q, want %q", got, want)
		}
	})
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		var s stops
		d, _ := testDaemon(t, &s, func(ctx context.Context) error {
			<-ctx.Done()
			s.add("consumer")
			return nil
		})
		d.ln.Close() // Serve fails at once
		err := d.run(t.Context())
		if err == nil || !strings.HasPrefix(err.Error(), "http: serve on") {
			t.Errorf("run: %v, want the HTTP server's error", err)
		}
		if got := s.list(); len(got) < 2 || got[0] != "consumer" || got[1] != "retention" {
			t.Errorf("stopped %q, want the consumer then retention", got)
		}
	})
}

// waitHealthz waits up to 10s for /healthz to answer and returns its status.
func waitHealthz(t *testing.T, addr string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code := healthz(addr); code != 0 || time.Now().After(deadline) {
			return code
		}
		time.Sleep(20 * time.Millisecond)
	}
}
