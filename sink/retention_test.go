package sink_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
)

func TestRetentionCutoff(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		now  time.Time
		days int
		want string
	}{
		{time.Date(2025, 6, 10, 15, 0, 0, 0, time.UTC), 90, "2025-03-12"},
		{time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC), 1, "2025-06-09"},
		{time.Date(2025, 3, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)), 1, "2025-02-28"}, // 00:00 UTC on 1 March
		{time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), 366, "2023-03-01"},
	} {
		if got := sink.RetentionCutoff(c.now, c.days).Format(time.RFC3339); got != c.want+"T00:00:00Z" {
			t.Errorf("RetentionCutoff(%s, %d) = %s, want %s", c.now, c.days, got, c.want)
		}
	}
}

// writeDays stores one event on each of the given days before today.
func writeDays(t *testing.T, pg *sink.Postgres, daysAgo ...int) {
	t.Helper()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var items []cloudtrail.Entry
	for _, d := range daysAgo {
		items = append(items, event(fmt.Sprint("ago", d), today.AddDate(0, 0, -d).Add(12*time.Hour), "k"))
	}
	for attempt := 0; ; attempt++ {
		_, err := write(context.Background(), pg, []*testObject{{Bucket: "bucket", Key: "k", Stream: &rows{items: slices.Clone(items)}}})
		if err == nil {
			return
		}
		// Retention running meanwhile may drop a partition between its
		// creation and the insert: the worker retries such errors.
		if retry.IsPermanent(err) || attempt == 3 {
			t.Fatal(err)
		}
	}
}

func names(parts []sink.Partition) string {
	var s []string
	for _, p := range parts {
		s = append(s, p.Name)
	}
	return strings.Join(s, " ")
}

func TestRetentionDropsWholeOldPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	writeDays(t, pg, 400, 10, 6, 5, 1, 0)
	if _, err := pg.Pool().Exec(ctx, `ANALYZE cloudtrail_events`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cutoff := sink.RetentionCutoff(now, 5)
	day := func(ago int) string { return "cloudtrail_events_" + now.UTC().AddDate(0, 0, -ago).Format("20060102") }
	want := day(400) + " " + day(10) + " " + day(6)

	parts, err := pg.DropPartitionsBefore(ctx, cutoff, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(parts); got != want {
		t.Errorf("dry run lists %q, want %q", got, want)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 6 {
		t.Fatalf("dry run left %d events, want 6", n)
	}
	p := parts[2]
	if p.Start != cutoff.AddDate(0, 0, -1) || p.End != cutoff || p.ApproxRows != 1 {
		t.Errorf("partition %+v, want [%s, %s) with 1 row", p, cutoff.AddDate(0, 0, -1), cutoff)
	}

	parts, err = pg.DropPartitionsBefore(ctx, cutoff, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(parts); got != want {
		t.Errorf("dropped %q, want %q", got, want)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events WHERE event_time >= $1`, cutoff); n != 3 {
		t.Errorf("%d events from the cutoff on, want 3 (untouched)", n)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 3 {
		t.Errorf("%d events in all, want 3", n)
	}
	if parts, err := pg.DropPartitionsBefore(ctx, cutoff, false); err != nil || len(parts) != 0 {
		t.Errorf("second run dropped %v, %v; want nothing", parts, err)
	}

	// A late event for a dropped day is stored again, in a new partition.
	writeDays(t, pg, 10)
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 4 {
		t.Errorf("%d events after writing to a dropped day, want 4", n)
	}
}

func TestRetentionRefusesTodayAndFuture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	writeDays(t, pg, 0)
	tomorrow := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	if _, err := pg.DropPartitionsBefore(ctx, tomorrow, false); err == nil || !strings.Contains(err.Error(), "after today") {
		t.Errorf("cutoff tomorrow: %v; want a refusal", err)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

func TestRetentionOneProcessAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	writeDays(t, pg, 30)
	tx, err := pg.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	// The retention lock's key, as another process takes it.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(0x70677472_61696c02)); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.DropPartitionsBefore(ctx, sink.RetentionCutoff(time.Now(), 7), false); !errors.Is(err, sink.ErrRetentionBusy) {
		t.Errorf("with the lock taken: %v; want ErrRetentionBusy", err)
	}
	// A dry run needs no lock.
	if parts, err := pg.DropPartitionsBefore(ctx, sink.RetentionCutoff(time.Now(), 7), true); err != nil || len(parts) != 1 {
		t.Errorf("dry run with the lock taken: %v, %v", parts, err)
	}
}

func TestRetentionGivesUpBehindLongQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setup(t)
	writeDays(t, pg, 30, 0)
	tx, err := pg.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM cloudtrail_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = pg.DropPartitionsBefore(ctx, sink.RetentionCutoff(time.Now(), 7), false)
	if err == nil || !strings.Contains(err.Error(), "stayed in use") {
		t.Errorf("behind a long query: %v; want a lock timeout", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("gave up after %s", d)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pg, `SELECT count(*) FROM cloudtrail_events`); n != 2 {
		t.Errorf("%d events, want 2: nothing dropped", n)
	}
}

func TestRunRetention(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	writeDays(t, pg, 40, 20, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pg.RunRetention(ctx, 10, 20*time.Millisecond)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for count(t, pg, `SELECT count(*) FROM cloudtrail_events`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("RunRetention did not drop the old partitions")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// It keeps running: a late old event goes at its next turn.
	writeDays(t, pg, 40)
	for count(t, pg, `SELECT count(*) FROM cloudtrail_events`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("RunRetention did not run again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunRetention did not return after cancel")
	}
}
