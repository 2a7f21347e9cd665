package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/internal/corpus"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

// helpCommands are every command that takes flags, as typed.
var helpCommands = [][]string{{"run"}, {"ingest"}, {"status"}, {"migrate"}, {"retention"}, {"dlq"}, {"dlq", "list"}, {"dlq", "redrive"},
	{"backfill"}, {"serve"}, {"lookup"}}

// TestUsageListsEveryCommand: every command registered, by main.go or by
// its own file's init, has a line in pgtrail's usage text.
func TestUsageListsEveryCommand(t *testing.T) {
	t.Parallel()
	for name := range commands {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + `\b`).MatchString(usage) {
			t.Errorf("pgtrail %s is not in the usage text", name)
		}
	}
	if len(commands) < 10 {
		t.Errorf("only %d commands registered", len(commands))
	}
}

// TestHelpNeedsNoDatabaseURL: COMMAND -h, -help, --help and pgtrail help
// COMMAND print the command's usage on stdout and exit 0, with an empty
// environment.
func TestHelpNeedsNoDatabaseURL(t *testing.T) {
	t.Parallel()
	env := envconfig.MapLookuper(nil)
	for _, words := range helpCommands {
		want := "usage: pgtrail " + strings.Join(words, " ")
		for _, args := range [][]string{
			append(words[:len(words):len(words)], "-h"),
			append(words[:len(words):len(words)], "-help"),
			append(words[:len(words):len(words)], "--help"),
			append([]string{"help"}, words...),
		} {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), args, env, &stdout, &stderr)
			if code != 0 || !strings.Contains(stdout.String(), want) || stderr.Len() > 0 {
				t.Errorf("pgtrail %s: exit %d, stdout %q, stderr %q; want 0 and %q on stdout",
					strings.Join(args, " "), code, stdout.String(), stderr.String(), want)
			}
		}
	}
	// Help among other arguments is still only help.
	for _, args := range [][]string{{"ingest", "some/path", "-h"}, {"dlq", "list", "-n", "3", "-h"}, {"retention", "-dry-run", "-h"}} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, env, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "usage: pgtrail "+args[0]) {
			t.Errorf("pgtrail %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
	}
	// Help with a setting that does not parse still helps.
	var stdout bytes.Buffer
	bad := envconfig.MapLookuper(map[string]string{"PGTRAIL_POLLERS": "many"})
	if code := Main(context.Background(), []string{"run", "-h"}, bad, &stdout, &stdout); code != 0 || !strings.Contains(stdout.String(), "-drain") {
		t.Errorf("run -h with a bad PGTRAIL_POLLERS: exit %d, %q", code, stdout.String())
	}
}

// TestExitStatusConvention: 2 for every usage error, of every command.
func TestExitStatusConvention(t *testing.T) {
	t.Parallel()
	env := envconfig.MapLookuper(map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/db?connect_timeout=1",
		"SQS_QUEUE_URL": "http://127.0.0.1:1/000000000000/q"})
	cases := [][]string{
		{}, {"nope"}, {"help", "nope"},
		{"run", "-nope"}, {"run", "extra"},
		{"migrate", "-nope"}, {"migrate", "extra"},
		{"ingest", "-nope"}, {"ingest"},
		{"status", "-nope"}, {"status", "extra"},
		{"retention", "-nope"}, {"retention", "-days", "0"}, {"retention", "extra"},
		{"dlq"}, {"dlq", "nope"}, {"dlq", "list", "-nope"}, {"dlq", "list", "-n", "0"},
		{"dlq", "redrive", "-nope"}, {"dlq", "redrive", "-max-per-second", "-1"}, {"dlq", "list", "extra"},
	}
	for _, args := range cases {
		var out bytes.Buffer
		if code := Main(context.Background(), args, env, &out, &out); code != 2 {
			t.Errorf("pgtrail %s: exit %d, want 2 (usage)\n%s", strings.Join(args, " "), code, out.String())
		}
	}
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"migrate"}, envconfig.MapLookuper(nil), &out, &out); code != 2 || !strings.Contains(out.String(), "DATABASE_URL") {
		t.Errorf("migrate without DATABASE_URL: exit %d, %q; want 2 naming DATABASE_URL", code, out.String())
	}
}

// TestConnectionErrorIsOneLine: a database that cannot be reached is named
// by its variable, once, on one line, without the password.
func TestConnectionErrorIsOneLine(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "console"} {
		env := envconfig.MapLookuper(map[string]string{
			"DATABASE_URL":       "postgres://bob:hunter2@127.0.0.1:1/db?connect_timeout=2",
			"PGTRAIL_LOG_FORMAT": format, "PGTRAIL_LOG_LEVEL": "warn",
		})
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), []string{"migrate"}, env, &stdout, &stderr)
		out := stderr.String()
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s", format, code, out)
		}
		if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "pgtrail: DATABASE_URL: cannot connect to postgres://bob:xxxxx@127.0.0.1:1/db") {
			t.Errorf("%s: want one line naming DATABASE_URL, got:\n%s", format, out)
		}
		for _, noise := range []string{`\n\t`, "\t", "hunter2"} {
			if strings.Contains(out, noise) {
				t.Errorf("%s: the error holds %q:\n%s", format, noise, out)
			}
		}
		if n := strings.Count(out, "connection refused"); n != 1 {
			t.Errorf("%s: the reason is given %d times, want once:\n%s", format, n, out)
		}
	}
}

// TestConsoleLogsColourOnlyATerminal: PGTRAIL_LOG_FORMAT=console writes no
// escape sequences to a buffer or a file.
func TestConsoleLogsColourOnlyATerminal(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []interface{ Write([]byte) (int, error) }{&buf, f} {
		log, err := newLogger(&Config{LogLevel: "info", LogFormat: "console"}, w)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hello")
		log.Error("oops")
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"buffer": buf.String(), "file": string(b)} {
		if strings.Contains(out, "\x1b[") || !strings.Contains(out, "INFO") || !strings.Contains(out, "ERROR") {
			t.Errorf("%s: want plain INFO and ERROR without escapes, got %q", name, out)
		}
	}
}

// TestIngestLogsPartitionsAtDebug: at the default level ingest prints no
// line per partition it creates; at debug it does.
func TestIngestLogsPartitionsAtDebug(t *testing.T) {
	t.Parallel()
	stratus := filepath.Join(corpus.Dir(t), "s3", "stratus-red-team")
	db := pgtest.New(t)
	for _, level := range []string{"info", "debug"} {
		env := envconfig.MapLookuper(map[string]string{"DATABASE_URL": db, "PGTRAIL_LOG_LEVEL": level})
		if level == "debug" {
			// A fresh database, so that partitions are created again.
			env = envconfig.MapLookuper(map[string]string{"DATABASE_URL": pgtest.New(t), "PGTRAIL_LOG_LEVEL": level})
		}
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), []string{"ingest", stratus}, env, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d\n%s", level, code, stderr.String())
		}
		n := strings.Count(stderr.String(), "partition created")
		if level == "info" && n != 0 {
			t.Errorf("at info, %d lines say a partition was created:\n%s", n, stderr.String())
		}
		if level == "debug" && n == 0 {
			t.Errorf("at debug, no line says a partition was created")
		}
	}
}
