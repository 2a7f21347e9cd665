// Command pgtrail turns CloudTrail logs into PostgreSQL rows.
//
//	pgtrail run              consume the SQS queue (the daemon)
//	pgtrail migrate          apply the database migrations
//	pgtrail ingest PATH...   read local CloudTrail files and folders
//	pgtrail backfill ...     load a bucket's history for a range of days
//	pgtrail retention        drop the day partitions older than PGTRAIL_RETENTION_DAYS
//	pgtrail status           one screen for the on-call: queue, DLQ, ingest, partitions
//	pgtrail dlq list|redrive the dead-letter queue: why its messages failed; move them back
//	pgtrail rules ...        test and list the alert rules
//	pgtrail serve            CloudTrail's LookupEvents API over the database
//	pgtrail lookup ...       LookupEvents' query from the command line
//	pgtrail version          print the version
//
// Configuration comes from the environment: see the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
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
  backfill         load a bucket's history for a range of days (-bucket, -from; -dry-run, -enqueue)
  retention        drop the day partitions older than PGTRAIL_RETENTION_DAYS (-dry-run: only show them)
  status           queue and DLQ depth, recent ingest, last object, partitions
  verify           the log files' integrity from CloudTrail's digests, as validate-logs (-from; -json)
  dlq list         the messages in the dead-letter queue, their objects and why they failed
  dlq redrive      move the dead-letter queue's messages back to SQS_QUEUE_URL
  rules test [-json] RULES PATH...
                   evaluate Sigma rules on local CloudTrail files and print each match
  rules list [RULES]
                   the rules loaded (PGTRAIL_RULES by default) and those refused, with why
  serve            serve CloudTrail's LookupEvents API (PGTRAIL_API_*) for the AWS CLI and SDKs
  lookup [-attr KEY=VALUE]... [-from T] [-to T] [-json]
                   the events LookupEvents would return, over the whole history
  version          print the version
  help COMMAND     the command's help (as does COMMAND -h)

Exit status: 0 success, 1 failure, 2 usage or configuration error.
Configuration is read from the environment; see the README.
`

// Exit statuses, the same for every command.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // the command line or the configuration is wrong
)

// Main runs one command and returns the process's exit status.
func Main(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "pgtrail", version)
		return exitOK
	case "help", "-h", "-help", "--help":
		if cmd != "help" || len(args) == 0 {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		if _, ok := commands[args[0]]; !ok {
			fmt.Fprintf(stderr, "pgtrail: help: unknown command %q\n\n%s", args[0], usage)
			return exitUsage
		}
		cmd, args = args[0], append(args[1:len(args):len(args)], "-h")
	}
	run, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "pgtrail: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	if wantsHelp(args) {
		// Help needs neither DATABASE_URL nor any other setting: the
		// flags' defaults are shown from the environment where it parses.
		return showHelp(ctx, cmd, run, args, env, stdout)
	}
	load := loadConfig
	if offline[cmd] {
		load = parseConfig
	}
	cfg, err := load(ctx, env)
	if err != nil {
		fmt.Fprintln(stderr, "pgtrail:", strings.ReplaceAll(err.Error(), "\n", "\npgtrail: "))
		return exitUsage
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "pgtrail:", err)
		return exitUsage
	}
	defer log.Sync() //nolint:errcheck // stderr cannot always be synced
	if cfg.CPUProfile != "" {
		stopProfile, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "pgtrail:", err)
			return exitUsage
		}
		defer stopProfile()
	}

	err = run(ctx, &app{cfg: cfg, log: log, stdout: stdout, stderr: stderr}, args)
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return int(ee)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return exitOK
	default:
		if msg, ok := connectionError(err, cfg.DatabaseURL); ok {
			// One plain line: the driver's own error repeats itself
			// once per address and attempt, indented with tabs.
			fmt.Fprintln(stderr, "pgtrail:", msg)
			return exitFailure
		}
		log.Error("pgtrail "+cmd+" failed", zap.String("error", oneLine(err.Error())))
		return exitFailure
	}
}

// wantsHelp tells whether args ask for the command's help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// showHelp runs the command with -h only, on stdout, with the configuration
// the environment gives when it is valid and the defaults otherwise.
func showHelp(ctx context.Context, cmd string, run func(context.Context, *app, []string) error, args []string, env envconfig.Lookuper, stdout io.Writer) int {
	var cfg Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &cfg, Lookuper: trimmed{env}}); err != nil {
		cfg = Config{}
		_ = envconfig.ProcessWith(ctx, &envconfig.Config{Target: &cfg, Lookuper: envconfig.MapLookuper(nil)})
	}
	// Only a subcommand (dlq list) is kept: ingest's paths are not.
	help := []string{"-h"}
	if cmd == "dlq" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		help = []string{args[0], "-h"}
	}
	err := run(ctx, &app{cfg: &cfg, log: zap.NewNop(), stdout: stdout, stderr: stdout}, help)
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return int(ee)
	default:
		fmt.Fprintln(stdout, "pgtrail:", err)
		return exitFailure
	}
}

// connectionError is the one line that says the database in DATABASE_URL
// could not be reached, and why, when err is such a failure.
func connectionError(err error, dsn string) (string, bool) {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return "", false
	}
	reason := ce.Error()
	if inner := errors.Unwrap(ce); inner != nil {
		reason = inner.Error()
	}
	var lines []string
	for _, l := range strings.Split(reason, "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	return fmt.Sprintf("DATABASE_URL: cannot connect to %s: %s", sink.Redact(dsn), strings.Join(lines, "; ")), true
}

// oneLine joins the lines of an error message with "; ".
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
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

// parseFlags parses args with fs: -h ends the command with status 0 (its
// help printed), a bad flag with status 2.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return exitError(exitOK)
	default:
		return exitError(exitUsage)
	}
}

var commands = map[string]func(context.Context, *app, []string) error{
	"run":       cmdRun,
	"migrate":   cmdMigrate,
	"ingest":    cmdIngest,
	"backfill":  cmdBackfill,
	"status":    cmdStatus,
	"retention": cmdRetention,
	"dlq":       cmdDLQ,
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
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		if isTerminal(w) {
			ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
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

// isTerminal tells whether w is a terminal: colour escapes are for people,
// not for files, pipes and log collectors.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
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

// distribute lays the tables out over Citus when PGTRAIL_CITUS=true; when
// it is not set but the citus extension is installed, it says that the
// tables stay as on plain PostgreSQL. Distribution is never implied: it
// copies every row and cannot be undone by pgtrail.
func distribute(ctx context.Context, e *app, pg *sink.Postgres) error {
	if e.cfg.Citus {
		return pg.Distribute(ctx)
	}
	installed, err := pg.CitusInstalled(ctx)
	if err != nil {
		return err
	}
	if installed {
		e.log.Info("the citus extension is installed, but PGTRAIL_CITUS is not true: pgtrail's tables are left as they are; set PGTRAIL_CITUS=true to distribute them (docs/scaling.md)")
	}
	return nil
}

func cmdMigrate(ctx context.Context, e *app, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: pgtrail migrate\n\nApplies the embedded migrations to DATABASE_URL, under an advisory lock: safe when\nmany workers start at once, and a no-op when the schema is current. With\nPGTRAIL_CITUS=true it then distributes the tables over a Citus cluster\n(docs/scaling.md).")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(exitUsage)
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
	if err := distribute(ctx, e, pg); err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.stdout, "schema is up to date")
		return nil
	}
	fmt.Fprintf(e.stdout, "applied migrations %v\n", applied)
	return nil
}
