package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/internal/retry"
)

func TestPermanent(t *testing.T) {
	if retry.Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	base := errors.New("no such key")
	err := fmt.Errorf("s3: get: %w", retry.Permanent(base))
	if !retry.IsPermanent(err) || !errors.Is(err, base) {
		t.Errorf("wrapped permanent error: IsPermanent %t, Is %t", retry.IsPermanent(err), errors.Is(err, base))
	}
	if retry.IsPermanent(base) {
		t.Error("an unmarked error is permanent")
	}
	if p := retry.Permanent(err); p != err {
		t.Error("Permanent wraps an error marked already")
	}
}

func TestRetry(t *testing.T) {
	b := retry.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond, Attempts: 3}
	calls, retries := 0, 0
	err := b.Retry(context.Background(), func() error { calls++; return errors.New("down") },
		func(int, error) { retries++ })
	if err == nil || calls != 3 || retries != 2 {
		t.Errorf("transient: err %v, %d calls, %d retries; want an error, 3 calls, 2 retries", err, calls, retries)
	}
	calls = 0
	err = b.Retry(context.Background(), func() error { calls++; return retry.Permanent(errors.New("gone")) }, nil)
	if !retry.IsPermanent(err) || calls != 1 {
		t.Errorf("permanent: err %v, %d calls; want it after 1 call", err, calls)
	}
	for n := 1; n < 30; n++ {
		if d := b.Delay(n); d < 0 || d > b.Max {
			t.Errorf("Delay(%d) = %v, outside [0, %v]", n, d, b.Max)
		}
	}
}
