// Package testdb gives tests a migrated pgtrail database, loaded with
// CloudTrail log files through the worker's real decode and write path, as
// pgtrail ingest loads them.
package testdb

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// Open returns a sink on a fresh, migrated database, and the database's
// URL; both go with the test.
func Open(t testing.TB) (*sink.Postgres, string) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.New(t)
	pg, err := sink.Open(ctx, sink.Config{URL: url}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return pg, url
}

// Ingest stores the log files in pg, one after another, and analyzes the
// tables so that plans are those of a database in use.
func Ingest(t testing.TB, pg *sink.Postgres, files []string) {
	t.Helper()
	ctx := context.Background()
	proc := worker.NewProcessor(worker.Config{}, nil, pg, nil, nil, zaptest.NewLogger(t))
	for _, f := range files {
		if _, err := proc.File(ctx, f); err != nil {
			t.Fatalf("ingest %s: %v", f, err)
		}
	}
	if _, err := pg.Pool().Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
}

// Reader opens a sink.Reader, as the reader role, on the database at url;
// it goes with the test.
func Reader(t testing.TB, url string) *sink.Reader {
	t.Helper()
	r, err := sink.OpenReader(context.Background(), sink.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}
