package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/sethvargo/go-envconfig"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/web"
)

func init() { commands["serve"] = cmdServe }

// cmdServe serves CloudTrail's LookupEvents API over the database, as the
// reader role, until SIGTERM or SIGINT; SIGHUP re-reads the credentials
// file. Its settings are lookup.Config's PGTRAIL_API_* variables
// (docs/lookup.md).
func cmdServe(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", args)
	}
	var cfg lookup.Config
	if err := envconfig.Process(ctx, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	creds, err := lookup.LoadCredentials(cfg.CredentialsFile)
	if err != nil {
		return fmt.Errorf("config: PGTRAIL_API_CREDENTIALS: %w", err)
	}
	reader, err := sink.OpenReader(ctx, sink.Config{URL: a.cfg.DatabaseURL, ReaderRole: a.cfg.ReaderRole, MaxConns: a.cfg.dbMaxConns()})
	if err != nil {
		return err
	}
	defer reader.Close()
	if err := reader.Ping(ctx); err != nil {
		return err
	}
	o := cfg.Options()
	o.Store, o.Credentials, o.Log = reader, creds, a.log
	if o.Page, err = newPage(ctx, reader, creds, a.log); err != nil {
		return err
	}
	srv, err := lookup.New(o)
	if err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := srv.Reload(); err != nil {
					a.log.Error("credentials not reloaded; the keys in force stay", zap.Error(err))
				} else {
					a.log.Info("credentials reloaded", zap.Int("keys", creds.Len()))
				}
			}
		}
	}()

	tls := cfg.TLSCert != ""
	if host, _, _ := net.SplitHostPort(cfg.Addr); !tls && !isLoopback(host) {
		a.log.Warn("the LookupEvents API listens beyond loopback without TLS: audit records cross the network in clear",
			zap.String("addr", cfg.Addr))
	}
	a.log.Info("serving LookupEvents", zap.String("addr", cfg.Addr), zap.Bool("tls", tls), zap.Int("keys", creds.Len()),
		zap.Float64("rate_per_key", cfg.Rate), zap.Bool("full_history", cfg.FullHistory),
		zap.Bool("multiple_attributes", cfg.MultipleAttributes), zap.Bool("web_page", o.Page != nil))
	return srv.ListenAndServe(ctx, cfg.Addr, cfg.TLSCert, cfg.TLSKey)
}

// newPage builds the event-history page (docs/web.md) that GET / serves
// beside the API, or returns nil when PGTRAIL_WEB is false.
func newPage(ctx context.Context, reader *sink.Reader, creds *lookup.Credentials, log *zap.Logger) (http.Handler, error) {
	var cfg web.Config
	if err := envconfig.Process(ctx, &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !cfg.Enabled {
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := cfg.Options()
	o.Store, o.Keys, o.Log = reader, creds, log
	return web.New(o)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
