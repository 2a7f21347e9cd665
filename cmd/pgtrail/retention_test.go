package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// eventsOn stores one event on each day, with a delivered alert of it,
// bypassing the sink.
func eventsOn(t *testing.T, db string, days ...time.Time) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for i, d := range days {
		if _, err := c.Exec(ctx, `SELECT pgtrail_ensure_partition($1::date)`, d.Format(time.DateOnly)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, `INSERT INTO cloudtrail_events (event_id, event_time, record, s3_bucket, s3_key)
            VALUES ($1, $2, '{}', 'b', 'k')`, fmt.Sprint("e", i), d); err != nil {
			t.Fatal(err)
		}
		// And a delivered alert of the event.
		if _, err := c.Exec(ctx, `INSERT INTO cloudtrail_alerts (id, rule_id, title, event_id, event_time, status, settled_at)
            VALUES (gen_random_uuid(), 'rule', 'r', $1, $2, 'sent', $2)`, fmt.Sprint("e", i), d); err != nil {
			t.Fatal(err)
		}
	}
}

func partitionCount(t *testing.T, db string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'cloudtrail_events'::regclass`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRetentionCommand(t *testing.T) {
	t.Parallel()
	db := migrated(t)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	eventsOn(t, db, today.AddDate(0, 0, -40), today.AddDate(0, 0, -31), today.AddDate(0, 0, -2), today)
	env := map[string]string{"DATABASE_URL": db, "PGTRAIL_RETENTION_DAYS": "30"}
	old1 := "cloudtrail_events_" + today.AddDate(0, 0, -40).Format("20060102")
	old2 := "cloudtrail_events_" + today.AddDate(0, 0, -31).Format("20060102")

	code, out, stderr := runCommand(t, t.Context(), env, "retention", "-dry-run")
	if code != 0 {
		t.Fatalf("retention -dry-run: exit %d\n%s%s", code, out, stderr)
	}
	wantLines(t, out, "keeping 30 days", "would drop "+old1, "would drop "+old2, "2 partitions would be dropped",
		"would delete 2 settled alerts, 0 summaries, 0 delivery records")
	if n := partitionCount(t, db); n != 4 {
		t.Errorf("a dry run left %d partitions, want 4", n)
	}

	code, out, stderr = runCommand(t, t.Context(), env, "retention")
	if code != 0 {
		t.Fatalf("retention: exit %d\n%s%s", code, out, stderr)
	}
	wantLines(t, out, "dropped "+old1, "dropped "+old2, "2 partitions dropped", "deleted 2 settled alerts")
	if n := partitionCount(t, db); n != 2 {
		t.Errorf("%d partitions left, want 2", n)
	}

	code, out, _ = runCommand(t, t.Context(), env, "retention")
	if code != 0 || !strings.Contains(out, "nothing to drop") {
		t.Errorf("retention again: exit %d\n%s", code, out)
	}
	// -days overrides the variable.
	code, out, _ = runCommand(t, t.Context(), env, "retention", "-days", "1", "-dry-run")
	if code != 0 || !strings.Contains(out, "would drop cloudtrail_events_"+today.AddDate(0, 0, -2).Format("20060102")) {
		t.Errorf("retention -days 1 -dry-run: exit %d\n%s", code, out)
	}
}

func TestRetentionCommandUsage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, nil, "PGTRAIL_RETENTION_DAYS is 0"},
		{map[string]string{"PGTRAIL_RETENTION_DAYS": "7"}, []string{"extra"}, "usage: pgtrail retention"},
		{map[string]string{}, []string{"-days", "-3"}, "-days must be 1 to"},
		{map[string]string{"PGTRAIL_RETENTION_DAYS": "-1"}, nil, "PGTRAIL_RETENTION_DAYS: want an integer from 0"},
		{map[string]string{"PGTRAIL_READER_ROLE": "Analysts"}, nil, "PGTRAIL_READER_ROLE: want a lower-case SQL name"},
		{map[string]string{"PGTRAIL_WRITER_ROLE": "pg_writer"}, nil, "PGTRAIL_WRITER_ROLE: want a lower-case SQL name"},
		{map[string]string{"PGTRAIL_WRITER_ROLE": "pgtrail_reader"}, nil, "PGTRAIL_WRITER_ROLE: must differ"},
	} {
		env := map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/x"}
		for k, v := range c.env {
			env[k] = v
		}
		code, _, stderr := runCommand(t, t.Context(), env, append([]string{"retention"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want 2 and %q", c.env, c.args, code, stderr, c.want)
		}
	}
}

// TestMigrateRecordsRetentionFloor: pgtrail migrate records
// PGTRAIL_RETENTION_DAYS as the floor, which then refuses a shorter
// retention whoever asks.
func TestMigrateRecordsRetentionFloor(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": db, "PGTRAIL_RETENTION_DAYS": "30"}
	if code, _, stderr := runCommand(t, t.Context(), env, "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, stderr)
	}
	code, out, stderr := runCommand(t, t.Context(), env, "retention", "-days", "1", "-dry-run")
	if code == 0 || !strings.Contains(stderr, "retention floor of 30 days") {
		t.Errorf("retention -days 1 under a floor of 30: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := runCommand(t, t.Context(), env, "retention", "-dry-run"); code != 0 {
		t.Errorf("retention at the floor: exit %d\n%s%s", code, out, stderr)
	}
}
