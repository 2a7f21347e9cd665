package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgtrail/pgtrail/internal/localaws"
	"github.com/pgtrail/pgtrail/internal/pgtest"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// TestReadyzSaysWhyNotWho: /readyz, served on every interface, says that
// the database is unreachable without naming its user, database or host;
// the log has the details.
func TestReadyzSaysWhyNotWho(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	closed := freeAddr(t)
	pg, err := sink.Open(t.Context(), sink.Config{
		URL: fmt.Sprintf("postgres://readyz_secret_user@%s/readyz_secret_db?sslmode=disable&connect_timeout=2", closed),
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	w := worker.New(worker.Config{QueueURL: "http://127.0.0.1:1/000000000000/q"}, nil, nil, nil, log)
	addr := freeAddr(t)
	srv, ln, err := listenHTTP(addr, prometheus.NewRegistry(), pg, w, log)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()

	code, body := get(t, "http://"+addr+"/readyz")
	if code != http.StatusServiceUnavailable || body != "database unreachable\n" {
		t.Errorf("/readyz = %d %q; want 503 \"database unreachable\"", code, body)
	}
	host, _, _ := strings.Cut(closed, ":")
	for _, secret := range []string{"readyz_secret_user", "readyz_secret_db", host} {
		if strings.Contains(body, secret) {
			t.Errorf("/readyz names %q: %q", secret, body)
		}
	}
	warned := logs.FilterMessage("readiness: database unreachable").All()
	if len(warned) != 1 || !strings.Contains(fmt.Sprint(warned[0].ContextMap()["error"]), "readyz_secret_db") {
		t.Errorf("the log does not have the details: %v", logs.All())
	}
	get(t, "http://"+addr+"/readyz")
	if n := logs.FilterMessage("readiness: database unreachable").Len(); n != 1 {
		t.Errorf("a second failed probe logged again (%d lines): once per outage is enough", n)
	}
}

// TestRunChecksQueue: run reads the queue once at start, and stops with one
// line naming what to fix when it cannot, instead of logging "pgtrail
// running" and a failed receive every few seconds for good; and it warns
// when the queue has no redrive policy.
func TestRunChecksQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon")
	}
	stack := useLocalAWS(t)
	db := pgtest.New(t)
	noRedrive, _, err := stack.CreateQueue(t.Context(), localaws.UniqueName("noredrive"), 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	missing := strings.TrimSuffix(noRedrive, path.Base(noRedrive)) + localaws.UniqueName("missing")

	for _, tc := range []struct {
		name  string
		queue string
		env   map[string]string // process environment, read by the AWS SDK
		code  int
		want  string // in the one error line, or the warning
	}{
		{name: "no such queue", queue: missing, code: 1, want: "SQS_QUEUE_URL: no queue " + missing},
		{name: "not a queue URL", queue: "sqs/pgtrail", code: 2, want: "SQS_QUEUE_URL: want a queue URL"},
		{name: "no credentials", queue: noRedrive, code: 1, want: "aws credentials: none found in the default chain",
			env: map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "",
				"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": ""}},
		{name: "no redrive policy", queue: noRedrive, code: 0, want: "the queue has no redrive policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			env := map[string]string{
				"DATABASE_URL": db, "SQS_QUEUE_URL": tc.queue, "PGTRAIL_HTTP_ADDR": "",
				"PGTRAIL_WAIT_TIME": "1s", "S3_FORCE_PATH_STYLE": "true",
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var stderr lockedBuffer
			exited := make(chan int, 1)
			go func() {
				exited <- Main(ctx, []string{"run", "-drain"}, envconfig.MapLookuper(env), io.Discard, &stderr)
			}()
			var code int
			select {
			case code = <-exited:
			case <-time.After(20 * time.Second):
				cancel()
				<-exited
				t.Fatalf("run still going after 20s:\n%s", stderr.String())
			}
			out := stderr.String()
			if code != tc.code {
				t.Errorf("exit status %d, want %d\n%s", code, tc.code, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
			if tc.code == 0 {
				return
			}
			if strings.Contains(out, "pgtrail running") {
				t.Errorf("run started working before it failed:\n%s", out)
			}
			var errLines []string
			for line := range strings.Lines(out) {
				if strings.Contains(line, `"level":"error"`) || strings.HasPrefix(line, "pgtrail: ") {
					errLines = append(errLines, line)
				}
			}
			if len(errLines) != 1 {
				t.Errorf("%d error lines, want one:\n%s", len(errLines), out)
			} else {
				t.Logf("exit %d: %s", code, errLines[0])
			}
		})
	}
}
