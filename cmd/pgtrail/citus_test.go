package main

import (
	"strings"
	"testing"

	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// TestMigrateCitusRefusedWithoutExtension: PGTRAIL_CITUS=true on plain
// PostgreSQL applies the migrations, then fails naming the extension and
// the variable; unset, migrate succeeds and says nothing of Citus.
func TestMigrateCitusRefusedWithoutExtension(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	code, out, stderr := runCommand(t, t.Context(), map[string]string{"DATABASE_URL": db, "PGTRAIL_CITUS": "true"}, "migrate")
	if code == 0 || !strings.Contains(stderr, "citus extension is not installed") || !strings.Contains(stderr, "PGTRAIL_CITUS") {
		t.Fatalf("migrate with PGTRAIL_CITUS=true on plain PostgreSQL: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	code, out, stderr = runCommand(t, t.Context(), map[string]string{"DATABASE_URL": db}, "migrate")
	if code != 0 || !strings.Contains(out, "schema is up to date") || strings.Contains(strings.ToLower(stderr), "citus") {
		t.Fatalf("migrate without PGTRAIL_CITUS after the migrations: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}
