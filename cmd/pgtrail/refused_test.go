package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// TestIngestRejectsWhatPostgresRefuses ingests files that hold records
// PostgreSQL refuses (a 10 KB random eventID, a number beyond numeric's
// range) among good ones, beside a good file and one whose name is not
// UTF-8. The refused records are in cloudtrail_rejects with the reason,
// every other record is stored, the file with the bad name is refused by
// name and why rather than with a database error, and later runs, with the
// ledger or without it, store nothing twice (ingest looks up no ledger:
// every run reads every file).
func TestIngestRejectsWhatPostgresRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := func(id, extra string) string {
		return `{"eventID":"` + id + `","eventTime":"2024-03-01T12:00:00Z","eventName":"GetObject"` + extra + `}`
	}
	long := make([]byte, 5<<10)
	_, _ = rand.Read(long)
	mixed := []string{
		rec("m-0", ""), rec(hex.EncodeToString(long), ""), rec("m-2", ""),
		rec("m-3", `,"requestParameters":{"n":1e999999}`), rec("m-4", ""),
		rec("m-5", `,"requestParameters":{"a\u0000b":"x"}`),
	}
	files := map[string][]string{
		"mixed.json":         mixed,
		"plain.json":         {rec("p-0", ""), rec("p-1", ""), rec("p-2", "")},
		"bad-\xff.json":      {rec("n-0", "")},
		"also-mixed.json":    {rec("a-0", `,"requestParameters":{"n":-1e999999}`), rec("a-1", "")},
		"overflow-only.json": {rec("o-0", `,"responseElements":{"n":1e999999}`)},
	}
	for name, recs := range files {
		body := `{"Records":[` + strings.Join(recs, ",") + `]}`
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	url := pgtest.New(t)
	env := envconfig.MapLookuper(map[string]string{"DATABASE_URL": url, "PGTRAIL_LOG_LEVEL": "warn"})
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}

	for _, run := range []struct {
		name, summary string
		clearLedger   bool
	}{
		{"first run", "events: 8 read, 8 inserted, 0 duplicates skipped", false},
		{"second run", "events: 8 read, 0 inserted, 8 duplicates skipped", false},
		{"run without the ledger", "events: 8 read, 0 inserted, 8 duplicates skipped", true},
	} {
		if run.clearLedger {
			if _, err := conn.Exec(context.Background(), `DELETE FROM cloudtrail_objects`); err != nil {
				t.Fatal(err)
			}
		}
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), []string{"ingest", dir}, env, &stdout, &stderr)
		if code != 1 {
			t.Errorf("%s: exit status %d, want 1 for the file with the bad name; stderr: %s", run.name, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "bad-") || !strings.Contains(stderr.String(), "UTF-8") {
			t.Errorf("%s: stderr does not refuse the file whose name is not UTF-8 as such: %s", run.name, stderr.String())
		}
		if strings.Contains(stderr.String(), "SQLSTATE") {
			t.Errorf("%s: a database error reached the user: %s", run.name, stderr.String())
		}
		for _, want := range []string{"files: 4 read, 1 failed", run.summary, "records rejected: 4"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s: summary lacks %q:\n%s", run.name, want, stdout.String())
			}
		}
		if n := count(`SELECT count(*) FROM cloudtrail_events`); n != 8 {
			t.Errorf("%s: %d events, want 8", run.name, n)
		}
		for _, r := range []struct {
			file  string
			index int
			why   string
		}{
			{"mixed.json", 1, "eventID"},
			{"mixed.json", 3, "22003"},
			{"also-mixed.json", 0, "22003"},
			{"overflow-only.json", 0, "22003"},
		} {
			var reason string
			err := conn.QueryRow(context.Background(), `SELECT reason FROM cloudtrail_rejects WHERE s3_key = $1 AND record_index = $2`,
				filepath.Join(dir, r.file), r.index).Scan(&reason)
			if err != nil || !strings.Contains(reason, r.why) {
				t.Errorf("%s: record %d of %s: reject reason %q (%v), want one that says %q", run.name, r.index, r.file, reason, err, r.why)
			}
		}
		if n := count(`SELECT count(*) FROM cloudtrail_rejects`); n != 4 {
			t.Errorf("%s: %d rejects, want 4", run.name, n)
		}
		if n := count(`SELECT count(*) FROM cloudtrail_objects`); n != 4 {
			t.Errorf("%s: %d ledger rows, want 4", run.name, n)
		}
	}
}
