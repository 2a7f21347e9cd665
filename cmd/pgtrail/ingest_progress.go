package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/sink"
)

// ingestProgress holds ingest's running figures. Its methods are safe for
// concurrent use.
type ingestProgress struct {
	mu                                   sync.Mutex
	start                                time.Time
	files, done, failed                  int
	bytes, doneBytes                     int64
	events, inserted, duplicates, reject int
}

// line is the figures on one line, as a person reads them.
func (p *ingestProgress) line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := fmt.Sprintf("files %d/%d, %d failed; events %d, inserted %d, duplicates %d, rejects %d",
		p.done+p.failed, p.files, p.failed, p.events, p.inserted, p.duplicates, p.reject)
	if sec := time.Since(p.start).Seconds(); sec > 0 {
		s += fmt.Sprintf("; %.0f files/s, %.0f events/s", float64(p.done)/sec, float64(p.events)/sec)
	}
	return s
}

// log writes the figures as one structured log line.
func (p *ingestProgress) log(log *zap.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	elapsed := time.Since(p.start)
	var filesPS, eventsPS, bytesPS float64
	if sec := elapsed.Seconds(); sec > 0 {
		filesPS, eventsPS, bytesPS = float64(p.done)/sec, float64(p.events)/sec, float64(p.doneBytes)/sec
	}
	log.Info("ingest progress",
		zap.Int("files_done", p.done), zap.Int("files_total", p.files), zap.Int("files_failed", p.failed),
		zap.Int64("bytes_done", p.doneBytes), zap.Int64("bytes_total", p.bytes),
		zap.Int("events", p.events), zap.Int("inserted", p.inserted),
		zap.Int("duplicates", p.duplicates), zap.Int("rejects", p.reject),
		zap.Float64("files_per_second", filesPS), zap.Float64("events_per_second", eventsPS),
		zap.Float64("bytes_per_second", bytesPS), zap.Duration("elapsed", elapsed))
}

// show reports the figures until the returned function is called: a live
// bar of the bytes read on stderr when it is a terminal, else a log line
// every interval and one at the end (none when interval is not positive).
func (p *ingestProgress) show(ctx context.Context, stderr io.Writer, log *zap.Logger, every time.Duration) (stop func()) {
	var (
		tick   = every
		update func()
		finish = func() {}
	)
	if isTerminal(stderr) {
		bar := progressbar.NewOptions64(p.bytes,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(20),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		)
		tick = 200 * time.Millisecond
		update = func() {
			bar.Describe(p.line())
			p.mu.Lock()
			done := p.doneBytes
			p.mu.Unlock()
			_ = bar.Set64(done)
		}
		finish = func() { _ = bar.Finish(); _ = bar.Clear() }
	} else {
		if every <= 0 {
			return func() {}
		}
		update = func() { p.log(log) }
		finish = update
	}
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				update()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-stopped; finish() }) }
}

// add counts one file of size bytes, read into res or failed.
func (p *ingestProgress) add(size int64, res sink.WriteResult, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.doneBytes += size
	if failed {
		p.failed++
		return
	}
	p.done++
	p.events += res.Events
	p.inserted += res.Inserted
	p.duplicates += res.Duplicates
	p.reject += res.Rejected
}
