// Package retry is pgtrail's one scheme for telling errors worth retrying
// from the others, and its backoff. The edge that meets an error classifies
// it, once: sink marks what PostgreSQL refuses, worker what S3 or the
// object itself will refuse again. Everything upstream only asks
// IsPermanent. It imports only the standard library.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// permanentError marks a failure that will happen again however often it is
// retried: a missing object, bad gzip or JSON, a passed cap, or an object
// the sink cannot store (it marks its own errors so). A message that meets
// one is left for the queue's dead-letter queue; any other error is
// retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying. It returns nil for nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}

// Backoff is a capped, jittered exponential backoff.
type Backoff struct {
	Base, Max time.Duration
	// Attempts is how many times Retry calls its function in all.
	Attempts int
}

// DefaultBackoff retries five times over about fifteen seconds.
var DefaultBackoff = Backoff{Base: 250 * time.Millisecond, Max: 8 * time.Second, Attempts: 5}

// Delay returns the pause before retry n (n ≥ 1): "full jitter" over a
// doubling window, capped at Max.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base << min(n-1, 20)
	if d <= 0 || d > b.Max {
		d = b.Max
	}
	return d/2 + rand.N(d/2+1)
}

// Retry calls fn until it succeeds, returns a permanent error, ctx ends, or
// the attempts run out; it returns fn's last error. onRetry, when not nil, is
// told of each failure that will be retried.
func (b Backoff) Retry(ctx context.Context, fn func() error, onRetry func(attempt int, err error)) error {
	var err error
	for n := 1; ; n++ {
		if err = fn(); err == nil || IsPermanent(err) || n >= b.Attempts || ctx.Err() != nil {
			return err
		}
		if onRetry != nil {
			onRetry(n, err)
		}
		t := time.NewTimer(b.Delay(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
