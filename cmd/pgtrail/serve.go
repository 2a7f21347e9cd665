package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/web"
)

func init() { commands["serve"] = cmdServe }

// serveWarmConns is how many reader connections the server keeps open
// with the partitions' catalog entries read (sink.Config.WarmConns): a
// lookup that walks a year on a connection that has not read them waits
// some 200 ms more, and each connection that has holds them (52 MB on the
// server for a year of day partitions; reading them takes 0.25 to 0.5 s).
const serveWarmConns = 2

const serveUsage = `usage: pgtrail serve

Serves CloudTrail's LookupEvents API (AWS JSON 1.1, SigV4-signed) over the
database, as PGTRAIL_READER_ROLE, until SIGTERM or SIGINT; SIGHUP re-reads
the credentials file. Settings (docs/lookup.md):

  PGTRAIL_API_ADDR             listener, host:port (default 127.0.0.1:8455)
  PGTRAIL_API_CREDENTIALS      file of ACCESS_KEY_ID:SECRET_ACCESS_KEY lines (required)
  PGTRAIL_API_TLS_CERT, _KEY   PEM files: HTTPS only
  PGTRAIL_API_TOKEN_KEY        NextToken key, 32 bytes or more, the same on every server
  PGTRAIL_API_RATE, _BURST     requests per second and burst per key (default 2; 0: no limit)
  PGTRAIL_API_FULL_HISTORY     true: no 90-day window
  PGTRAIL_API_MULTIPLE_ATTRIBUTES  true: several LookupAttributes, ANDed

The event-history page is served at GET / on the same listener (docs/web.md):

  PGTRAIL_WEB                  false: the API only (default true)
  PGTRAIL_WEB_SESSION_TTL      a session unused this long ends (default 30m)
  PGTRAIL_WEB_MAX_SESSION      every session ends this long after its login (default 12h)
  PGTRAIL_WEB_SECURE_COOKIE    true: the session cookie is Secure on plain HTTP too (a TLS proxy in front)
`

// cmdServe serves CloudTrail's LookupEvents API over the database, as the
// reader role, until SIGTERM or SIGINT; SIGHUP re-reads the credentials
// file. Its settings are the PGTRAIL_API_* variables of Config.API
// (lookup.Config, docs/lookup.md).
func cmdServe(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() { fmt.Fprint(a.stderr, serveUsage) }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(exitUsage)
	}
	cfg := a.cfg.API
	if err := errors.Join(cfg.Validate(), a.cfg.Web.Validate()); err != nil {
		fmt.Fprintln(a.stderr, "pgtrail:", strings.ReplaceAll(err.Error(), "\n", "\npgtrail: "))
		return exitError(exitUsage)
	}
	creds, err := lookup.LoadCredentials(cfg.CredentialsFile)
	if err != nil {
		return fmt.Errorf("config: PGTRAIL_API_CREDENTIALS: %w", err)
	}
	reader, err := sink.OpenReader(ctx, sink.Config{URL: a.cfg.DatabaseURL, ReaderRole: a.cfg.ReaderRole,
		MaxConns: a.cfg.dbMaxConns(), WarmConns: serveWarmConns})
	if err != nil {
		return err
	}
	defer reader.Close()
	// Warm first: it waits for the connections the pool opens and warms,
	// which Ping then uses, rather than opening one of its own.
	if err := reader.Warm(ctx); err != nil {
		return err
	}
	if err := reader.Ping(ctx); err != nil {
		return err
	}
	o := cfg.Options()
	o.Store, o.Credentials, o.Log = reader, creds, a.log
	if o.Page, err = newPage(a.cfg.Web, reader, creds, a.log); err != nil {
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
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("PGTRAIL_API_ADDR: listen: %w", err)
	}
	// The address listened on, its port chosen when PGTRAIL_API_ADDR's is 0.
	a.log.Info("serving LookupEvents", zap.String("addr", ln.Addr().String()), zap.Bool("tls", tls), zap.Int("keys", creds.Len()),
		zap.Float64("rate_per_key", cfg.Rate), zap.Bool("full_history", cfg.FullHistory),
		zap.Bool("multiple_attributes", cfg.MultipleAttributes), zap.Bool("web_page", o.Page != nil))
	return srv.Serve(ctx, ln, cfg.TLSCert, cfg.TLSKey)
}

// newPage builds the event-history page (docs/web.md) that GET / serves
// beside the API, or returns nil when PGTRAIL_WEB is false.
func newPage(cfg web.Config, reader *sink.Reader, creds *lookup.Credentials, log *zap.Logger) (http.Handler, error) {
	if !cfg.Enabled {
		return nil, nil
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
