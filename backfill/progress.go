package backfill

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.uber.org/zap"
)

// Line is the figures of s on one line, as a person reads them.
func (s Stats) Line() string {
	var b strings.Builder
	if s.Discovering {
		b.WriteString("discovering accounts and regions; ")
	}
	fmt.Fprintf(&b, "days %d/%d, objects %d listed (%s), %d stored before, %d done, %d failed; events %d, inserted %d, duplicates %d, rejects %d",
		s.DaysListed, s.Days, s.Listed, bytes(s.ListedBytes), s.Stored, s.Done, s.Failed,
		s.Events, s.Inserted, s.Duplicates, s.Rejects)
	if sec := s.Elapsed.Seconds(); sec > 0 {
		fmt.Fprintf(&b, "; %.0f objects/s", float64(s.Done)/sec)
	}
	fmt.Fprintf(&b, "; elapsed %s", s.Elapsed.Round(time.Second))
	if r := s.Remaining(); r > 0 {
		fmt.Fprintf(&b, ", about %s left", r.Round(time.Second))
	}
	return b.String()
}

func bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// LogProgress writes the figures as one structured log line per call, for
// a container's log.
func LogProgress(log *zap.Logger) func(Stats) {
	return func(s Stats) {
		log.Info("backfill progress", zap.Bool("discovering", s.Discovering),
			zap.Int("days", s.Days), zap.Int("days_listed", s.DaysListed),
			zap.Int64("objects_listed", s.Listed), zap.Int64("bytes_listed", s.ListedBytes),
			zap.Int64("objects_stored_before", s.Stored), zap.Int64("objects_done", s.Done),
			zap.Int64("objects_failed", s.Failed), zap.Int64("bytes_done", s.DoneBytes),
			zap.Int64("events", s.Events), zap.Int64("inserted", s.Inserted),
			zap.Int64("duplicates", s.Duplicates), zap.Int64("rejects", s.Rejects),
			zap.Int64("list_calls", s.ListCalls), zap.Duration("elapsed", s.Elapsed),
			zap.Duration("remaining", s.Remaining()), zap.Strings("last_errors", s.LastErrors))
	}
}

// TerminalProgress draws a live bar on w, a terminal: bytes loaded out of
// those to load, with the figures and the last errors beside it. done
// clears the bar.
func TerminalProgress(w io.Writer) (update func(Stats), done func()) {
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)
	var shown int64
	update = func(s Stats) {
		if todo := s.ListedBytes - s.StoredBytes; todo > 0 && s.DaysListed == s.Days && !s.Discovering {
			bar.ChangeMax64(todo)
		}
		// The failures since the last call, as many as LastErrors holds,
		// are printed above the bar.
		fresh := int(min(s.Failed-shown, int64(len(s.LastErrors))))
		for _, e := range s.LastErrors[len(s.LastErrors)-fresh:] {
			_ = bar.Clear()
			fmt.Fprintln(w, "failed:", e)
		}
		shown = s.Failed
		bar.Describe(s.Line())
		_ = bar.Set64(s.DoneBytes)
	}
	return update, func() { _ = bar.Finish(); _ = bar.Clear() }
}
