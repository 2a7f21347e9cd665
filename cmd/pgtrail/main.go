// Command pgtrail turns CloudTrail logs into PostgreSQL rows.
//
//	pgtrail run              consume the SQS queue (the daemon)
//	pgtrail migrate          apply the database migrations
//	pgtrail ingest PATH...   read local CloudTrail files and folders
//	pgtrail retention        drop the day partitions older than PGTRAIL_RETENTION_DAYS
//	pgtrail status           one screen for the on-call: queue, DLQ, ingest, partitions
//	pgtrail rules ...        test and list the alert rules
//	pgtrail version          print the version
//
// Configuration comes from the environment: see the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/sethvargo/go-envconfig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/pgtrail/pgtrail/sink"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := Main(ctx, os.Args[1:], envconfig.OsLookuper(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: pgtrail <command> [flags]

commands:
  run              consume the SQS queue in SQS_QUEUE_URL and write events to DATABASE_URL
  migrate          apply the embedded database migrations
  ingest PATH...   read local CloudTrail files (.json, .json.gz) and folders
  retention        drop the day partitions older than PGTRAIL_RETENTION_DAYS (-dry-run: only show them)
  status           queue and DLQ depth, recent ingest, last object, partitions
  rules test [-json] RULES PATH...
                   evaluate Sigma rules on local CloudTrail files and print each match
  rules list [RULES]
                   the rules loaded (PGTRAIL_RULES by default) and those refused, with why
  version          print the version

Configuration is read from the environment; see the README.
`

// Main runs one command and returns the process's exit status.
func Main(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "pgtrail", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	run, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "pgtrail: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	load := loadConfig
	if offline[cmd] {
		load = parseConfig
	}
	cfg, err := load(ctx, env)
	if err != nil {
		fmt.Fprintln(stderr, "pgtrail:", strings.ReplaceAll(err.Error(), "\n", "\npgtrail: "))
		return 2
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "pgtrail:", err)
		return 2
	}
	defer log.Sync() //nolint:errcheck // stderr cannot always be synced
	if cfg.CPUProfile != "" {
		stopProfile, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "pgtrail:", err)
			return 2
		}
		defer stopProfile()
	}

	err = run(ctx, &app{cfg: cfg, log: log, stdout: stdout, stderr: stderr}, args)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return int(ee)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return 0
	default:
		log.Error("pgtrail "+cmd+" failed", zap.Error(err))
		return 1
	}
}

// app is what every command gets.
type app struct {
	cfg            *Config
	log            *zap.Logger
	stdout, stderr io.Writer
}

// exitError ends a command with a status, its reason already printed.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

var commands = map[string]func(context.Context, *app, []string) error{
	"run":       cmdRun,
	"migrate":   cmdMigrate,
	"ingest":    cmdIngest,
	"status":    cmdStatus,
	"retention": cmdRetention,
}

// offline are the commands, registered by their own files, that use no
// database: DATABASE_URL and the other settings are not checked for them.
var offline = map[string]bool{}

func newLogger(cfg *Config, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(strings.ToLower(cfg.LogLevel))
	if err != nil {
		return nil, fmt.Errorf("config: PGTRAIL_LOG_LEVEL: %w", err)
	}
	var enc zapcore.Encoder
	if cfg.LogFormat == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "time"
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.AddCaller()), nil
}

// startCPUProfile profiles the process into the file at path until the
// returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("config: PGTRAIL_CPU_PROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("config: PGTRAIL_CPU_PROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// openSink connects to the database named by DATABASE_URL.
func openSink(ctx context.Context, e *app) (*sink.Postgres, error) {
	e.log.Info("connecting to the database", zap.String("database", sink.Redact(e.cfg.DatabaseURL)))
	return sink.Open(ctx, sink.Config{URL: e.cfg.DatabaseURL, MaxConns: e.cfg.dbMaxConns(),
		ReaderRole: e.cfg.ReaderRole, WriterRole: e.cfg.WriterRole, RetentionDays: e.cfg.RetentionDays}, e.log)
}

// openMigrated is openSink followed, unless PGTRAIL_MIGRATE=false, by the
// migrations, with the alert rules of PGTRAIL_RULES set: what the commands
// that write need, so that every write path raises alerts alike.
func openMigrated(ctx context.Context, a *app) (*sink.Postgres, error) {
	rules, err := loadRules(a)
	if err != nil {
		return nil, err
	}
	pg, err := openSink(ctx, a)
	if err != nil {
		return nil, err
	}
	if a.cfg.Migrate {
		if _, err := pg.Migrate(ctx); err != nil {
			pg.Close()
			return nil, err
		}
	}
	if rules != nil {
		pg.SetMatcher(rules)
	}
	return pg, nil
}

func cmdMigrate(ctx context.Context, e *app, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("migrate takes no arguments, got %q", args)
	}
	pg, err := openSink(ctx, e)
	if err != nil {
		return err
	}
	defer pg.Close()
	applied, err := pg.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.stdout, "schema is up to date")
		return nil
	}
	fmt.Fprintf(e.stdout, "applied migrations %v\n", applied)
	return nil
}
