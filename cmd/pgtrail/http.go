package main

import (
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// listenHTTP listens on addr for /metrics, /healthz (the process is alive)
// and /readyz (the database answers and SQS answered recently); the
// returned server is to serve on the listener (see daemon). The listener may be
// open to all: /readyz says what is wrong in a few words, and leaves the
// details, such as the database's user, name and host, to the log.
func listenHTTP(addr string, reg *prometheus.Registry, pg *sink.Postgres, w *worker.Worker, log *zap.Logger) (*http.Server, net.Listener, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	var pingFailed atomic.Bool // the latest readiness ping failed
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		if err := w.Ready(); err != nil {
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := pg.Ping(r.Context()); err != nil {
			if !pingFailed.Swap(true) {
				log.Warn("readiness: database unreachable", zap.Error(err))
			}
			http.Error(rw, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		pingFailed.Store(false)
		fmt.Fprintln(rw, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("http: listen on PGTRAIL_HTTP_ADDR %s: %w", addr, err)
	}
	log.Info("serving metrics and health", zap.String("addr", ln.Addr().String()))
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln, nil
}
