package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// TestIngestRaisesAlerts: pgtrail ingest raises the built-in pack's alerts
// on the stratus-red-team detonations, once: a second run raises none.
// With PGTRAIL_RULES=off it raises none at all; a rules path that does not
// exist stops it before any write.
func TestIngestRaisesAlerts(t *testing.T) {
	t.Parallel()
	stratus := filepath.Join(corpus.Dir(t), "s3", "stratus-red-team")
	db := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": db, "PGTRAIL_LOG_LEVEL": "warn"}
	alerts := func() (n, stopLogging int) {
		t.Helper()
		c, err := pgx.Connect(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if err := c.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE title = 'CloudTrail Logging Stopped')
            FROM cloudtrail_alerts`).Scan(&n, &stopLogging); err != nil {
			t.Fatal(err)
		}
		return n, stopLogging
	}
	for run := range 2 {
		if code, _, stderr := runCommand(t, t.Context(), env, "ingest", stratus); code != 0 {
			t.Fatalf("ingest %d: exit %d\n%s", run, code, stderr)
		}
		if n, stop := alerts(); n != 65 || stop != 1 {
			t.Errorf("after ingest %d: %d alerts (%d for StopLogging), want the 65 that rules test finds, StopLogging once", run, n, stop)
		}
	}

	off := map[string]string{"DATABASE_URL": pgtest.New(t), "PGTRAIL_LOG_LEVEL": "warn", "PGTRAIL_RULES": "off"}
	if code, _, stderr := runCommand(t, t.Context(), off, "ingest", stratus); code != 0 {
		t.Fatalf("ingest with alerts off: exit %d\n%s", code, stderr)
	}
	c, err := pgx.Connect(context.Background(), off["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(context.Background(), `SELECT count(*) FROM cloudtrail_alerts`).Scan(&n); err != nil || n != 0 {
		t.Errorf("alerts off: %d alerts, %v", n, err)
	}

	missing := map[string]string{"DATABASE_URL": db, "PGTRAIL_RULES": "builtin,/nonexistent/rules"}
	if code, _, stderr := runCommand(t, t.Context(), missing, "ingest", stratus); code == 0 || !strings.Contains(stderr, "PGTRAIL_RULES") {
		t.Errorf("a missing rules path: exit %d\n%s", code, stderr)
	}
}
