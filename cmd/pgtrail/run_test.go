package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

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
	srv, err := serveHTTP(addr, prometheus.NewRegistry(), pg, w, log)
	if err != nil {
		t.Fatal(err)
	}
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
