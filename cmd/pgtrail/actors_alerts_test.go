package main

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestDaemonRelayOutlivesTheDrain: on SIGTERM the alert relay goes on
// while the consumer drains (its last writes may raise alerts), and stops
// after it, before the HTTP server.
func TestDaemonRelayOutlivesTheDrain(t *testing.T) {
	t.Parallel()
	var s stops
	relaying := make(chan struct{})
	d, addr := testDaemon(t, &s, func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // the messages in flight
		select {
		case <-relaying:
			s.add("consumer: the relay had stopped during the drain")
		default:
		}
		s.add("consumer")
		return nil
	})
	d.relay = func(ctx context.Context) error {
		defer close(relaying)
		<-ctx.Done()
		s.add("relay")
		return nil
	}
	ctx, sigterm := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	waitHealthz(t, addr)
	sigterm()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	// Retention's work stops at SIGTERM itself; the relay's does not.
	got := s.listWithHTTP()
	got = slices.DeleteFunc(got, func(s string) bool { return s == "retention" })
	if want := []string{"consumer", "relay", "http"}; !slices.Equal(got, want) {
		t.Errorf("stopped %q, want %q (retention aside)", got, want)
	}
}
