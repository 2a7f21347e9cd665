package worker

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestCombinerServesEveryCallerOnce: 500 callers at once; each gets its own
// result back, every item runs in exactly one batch, batches respect size,
// no more leaders run at once than the policy allows, callers that arrive
// while a batch runs share the next, and nothing is left behind.
func TestCombinerServesEveryCallerOnce(t *testing.T) {
	t.Parallel()
	const callers, batchMax, leadersMax = 500, 7, 2
	var (
		mu         sync.Mutex
		ran        = map[int]int{}
		sizes      []int
		running    int
		maxRunning int
	)
	var l combiner[int]
	l = combiner[int]{
		lead: func(_, leading int) bool { return leading < leadersMax },
		size: func(q []*queued[int]) int { return min(len(q), batchMax) },
		run: func(_ context.Context, batch []*queued[int]) {
			mu.Lock()
			running++
			maxRunning = max(maxRunning, running)
			sizes = append(sizes, len(batch))
			for _, it := range batch {
				ran[it.v]++
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
			for _, it := range batch {
				it.v = -it.v
				l.done(it)
			}
		},
	}
	var wg sync.WaitGroup
	for i := 1; i <= callers; i++ {
		wg.Go(func() {
			if got := l.do(t.Context(), i); got != -i {
				t.Errorf("caller %d got %d back", i, got)
			}
		})
	}
	wg.Wait()

	if len(ran) != callers {
		t.Errorf("%d items ran, want %d", len(ran), callers)
	}
	for v, n := range ran {
		if n != 1 {
			t.Errorf("item %d ran %d times", v, n)
		}
	}
	shared := false
	for _, n := range sizes {
		if n < 1 || n > batchMax {
			t.Errorf("a batch of %d items, want 1 to %d", n, batchMax)
		}
		shared = shared || n > 1
	}
	if !shared {
		t.Errorf("every batch held one item (%d batches): nothing was gathered", len(sizes))
	}
	if maxRunning > leadersMax {
		t.Errorf("%d batches ran at once, want at most %d", maxRunning, leadersMax)
	}
	if l.leading != 0 || len(l.queue) != 0 {
		t.Errorf("left with %d leaders and %d queued", l.leading, len(l.queue))
	}
}
