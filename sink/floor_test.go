package sink_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// floorDays returns the retention floor recorded in the database, 0 for
// none.
func floorDays(t *testing.T, h *hostileDB) int {
	t.Helper()
	return count(t, h.owner, `SELECT coalesce((SELECT days FROM pgtrail_retention_floor), 0)`)
}

// TestRetentionFloorBindsTheWriter: with the floor the owner records from
// its retention, the writer cannot drop a partition younger than that,
// directly or through pgtrail, nor change the floor; the owner can.
func TestRetentionFloorBindsTheWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHostileDB(t, 0, sink.Config{RetentionDays: 30})
	if d := floorDays(t, h); d != 30 {
		t.Fatalf("floor after migrating with 30 days of retention: %d", d)
	}
	writeDays(t, h.owner, 1, 20, 40)
	now := time.Now()

	// The writer's own retention does not move the floor.
	w := openAs(t, asUser(t, h.url, h.writerLogin), sink.Config{RetentionDays: 5})
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatalf("migrate as the writer: %v", err)
	}
	if d := floorDays(t, h); d != 30 {
		t.Errorf("floor after the writer migrated with 5 days: %d, want 30", d)
	}
	for _, dryRun := range []bool{false, true} {
		parts, err := w.DropPartitionsBefore(ctx, sink.RetentionCutoff(now, 5), dryRun)
		if err == nil || !strings.Contains(err.Error(), "retention floor") {
			t.Errorf("writer's cutoff 5 days back (dry run %v): dropped %v, %v; want a refusal", dryRun, names(parts), err)
		}
	}
	c := h.as(t, h.writerLogin)
	denied(t, c, `UPDATE pgtrail_retention_floor SET days = 1`)
	denied(t, c, `DELETE FROM pgtrail_retention_floor`)
	denied(t, c, `TRUNCATE pgtrail_retention_floor`)
	denied(t, c, `INSERT INTO pgtrail_retention_floor (only_row, days) VALUES (false, 1)`)
	if _, err := c.Exec(ctx, `SELECT * FROM pgtrail_drop_partitions_before((now() AT TIME ZONE 'UTC')::date - 29)`); err == nil {
		t.Error("the writer dropped partitions 29 days back past a floor of 30")
	}
	if n := count(t, h.owner, `SELECT count(*) FROM cloudtrail_events WHERE event_id IN ('ago1', 'ago20', 'today')`); n != 3 {
		t.Errorf("%d of the events within the floor left, want 3", n)
	}

	// At the floor, retention works.
	parts, err := w.DropPartitionsBefore(ctx, sink.RetentionCutoff(now, 30), false)
	if err != nil || !strings.Contains(names(parts), "cloudtrail_events_"+now.UTC().AddDate(0, 0, -40).Format("20060102")) {
		t.Errorf("writer's cutoff 30 days back: dropped %v, %v; want the day 40 days back", names(parts), err)
	}

	// The owner lowers the floor, or leaves it with retention off.
	lower := openAs(t, h.url, sink.Config{ReaderRole: h.reader, WriterRole: h.writer, RetentionDays: 7})
	if _, err := lower.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	off := openAs(t, h.url, sink.Config{ReaderRole: h.reader, WriterRole: h.writer})
	if _, err := off.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if d := floorDays(t, h); d != 7 {
		t.Errorf("floor after the owner migrated with 7 days, then 0: %d, want 7", d)
	}
	parts, err = w.DropPartitionsBefore(ctx, sink.RetentionCutoff(now, 7), false)
	if err != nil || names(parts) != "cloudtrail_events_"+now.UTC().AddDate(0, 0, -20).Format("20060102") {
		t.Errorf("writer's cutoff 7 days back under a floor of 7: dropped %v, %v; want the day 20 days back", names(parts), err)
	}
}
