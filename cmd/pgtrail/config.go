package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Config is everything pgtrail reads from its environment. The AWS SDK reads
// its own standard variables (AWS_REGION, AWS_ENDPOINT_URL, credentials,
// AWS_PROFILE, role chains) itself.
type Config struct {
	// DatabaseURL is the PostgreSQL connection string, URL or key=value
	// form; sslmode, sslrootcert and friends are honoured.
	DatabaseURL string `env:"DATABASE_URL"`
	// QueueURL is the SQS queue that receives the notifications (run only).
	QueueURL string `env:"SQS_QUEUE_URL"`
	// S3ForcePathStyle addresses buckets as endpoint/bucket/key, which
	// S3-compatible stores and local emulators need.
	S3ForcePathStyle bool `env:"S3_FORCE_PATH_STYLE, default=false"`

	// Pollers is the number of concurrent SQS long polls.
	Pollers int `env:"PGTRAIL_POLLERS, default=2"`
	// MaxInFlight caps the messages processed at once; 0 means 10×Pollers.
	MaxInFlight int `env:"PGTRAIL_MAX_IN_FLIGHT, default=0"`
	// ObjectConcurrency caps the objects fetched and written at once.
	ObjectConcurrency int `env:"PGTRAIL_OBJECT_CONCURRENCY, default=8"`
	// DBMaxConns caps the database pool; 0 means ObjectConcurrency+4.
	DBMaxConns int `env:"PGTRAIL_DB_MAX_CONNS, default=0"`
	// WaitTime is the SQS long-poll wait.
	WaitTime time.Duration `env:"PGTRAIL_WAIT_TIME, default=20s"`
	// VisibilityTimeout is set at receive and renewed every half period
	// while a message is processed.
	VisibilityTimeout time.Duration `env:"PGTRAIL_VISIBILITY_TIMEOUT, default=60s"`
	// MaxVisibility is how long one message may be held in all.
	MaxVisibility time.Duration `env:"PGTRAIL_MAX_VISIBILITY, default=1h"`
	// ShutdownGrace is how long in-flight messages may take to finish after
	// SIGTERM or SIGINT; 0s releases them at once.
	ShutdownGrace time.Duration `env:"PGTRAIL_SHUTDOWN_GRACE, default=30s"`
	// S3StallTimeout is how long a GetObject may wait for S3's answer or
	// for the next bytes of the body before the attempt is retried.
	S3StallTimeout time.Duration `env:"PGTRAIL_S3_STALL_TIMEOUT, default=30s"`
	// MaxObjectBytes caps one object's decompressed size.
	MaxObjectBytes int64 `env:"PGTRAIL_MAX_OBJECT_BYTES, default=2147483648"`
	// MaxRecordBytes caps one record's size.
	MaxRecordBytes int `env:"PGTRAIL_MAX_RECORD_BYTES, default=4194304"`
	// AllowedBuckets, when set, is the comma-separated list of buckets a
	// notification may name; others are refused.
	AllowedBuckets []string `env:"PGTRAIL_ALLOWED_BUCKETS"`
	// AllowedPrefixes, when set, is the comma-separated list of key
	// prefixes a notification may name.
	AllowedPrefixes []string `env:"PGTRAIL_ALLOWED_PREFIXES"`
	// Migrate makes run apply migrations at start.
	Migrate bool `env:"PGTRAIL_MIGRATE, default=true"`
	// RetentionDays is how many days of events to keep: run drops, once an
	// hour, the day partitions wholly older than that, and pgtrail
	// retention does so on demand. 0 keeps everything. Migrating as the
	// owner also records it as the retention floor, below which the database
	// refuses retention to any caller (docs/analysts.md).
	RetentionDays int `env:"PGTRAIL_RETENTION_DAYS, default=0"`
	// ReaderRole is the role that migrations create, unless it exists, and
	// allow to read events, views, ledger and rejects: grant it to analysts.
	// It is read when a migration runs; keep it set the same.
	ReaderRole string `env:"PGTRAIL_READER_ROLE, default=pgtrail_reader"`
	// WriterRole is the role that migrations create, unless it exists, and
	// allow to store events: grant it to the workers' login role.
	WriterRole string `env:"PGTRAIL_WRITER_ROLE, default=pgtrail_writer"`
	// HTTPAddr serves /metrics, /healthz and /readyz; empty disables it.
	HTTPAddr string `env:"PGTRAIL_HTTP_ADDR, default=:9090"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"PGTRAIL_LOG_LEVEL, default=info"`
	// LogFormat is json or console.
	LogFormat string `env:"PGTRAIL_LOG_FORMAT, default=json"`
	// CPUProfile, when set, is a file the command writes a pprof CPU
	// profile of its whole run to, for performance work.
	CPUProfile string `env:"PGTRAIL_CPU_PROFILE"`
}

// loadConfig reads the environment through lookup.
func loadConfig(ctx context.Context, lookup envconfig.Lookuper) (*Config, error) {
	var c Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: lookup}); err != nil {
		return nil, fmt.Errorf("config: %s", envName(err.Error()))
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// envName rewrites an envconfig error, which starts with the struct field's
// name, to start with the variable's name, which is what a user knows.
func envName(msg string) string {
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		f := t.Field(i)
		if rest, ok := strings.CutPrefix(msg, f.Name+":"); ok {
			name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			return name + ":" + rest
		}
	}
	return msg
}

// Validate checks values that parse but make no sense, naming the variable.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: "+format, append([]any{name}, args...)...))
	}
	if c.DatabaseURL == "" {
		bad("DATABASE_URL", "required")
	}
	if c.Pollers < 1 || c.Pollers > 100 {
		bad("PGTRAIL_POLLERS", "must be 1 to 100, got %d", c.Pollers)
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > 10000 {
		bad("PGTRAIL_MAX_IN_FLIGHT", "must be 0 to 10000, got %d", c.MaxInFlight)
	}
	if c.ObjectConcurrency < 1 || c.ObjectConcurrency > 1000 {
		bad("PGTRAIL_OBJECT_CONCURRENCY", "must be 1 to 1000, got %d", c.ObjectConcurrency)
	}
	if c.DBMaxConns < 0 || c.DBMaxConns > 10000 {
		bad("PGTRAIL_DB_MAX_CONNS", "must be 0 to 10000, got %d", c.DBMaxConns)
	}
	if c.WaitTime < time.Second || c.WaitTime > 20*time.Second {
		bad("PGTRAIL_WAIT_TIME", "must be 1s to 20s, got %s", c.WaitTime)
	}
	if c.VisibilityTimeout < 2*time.Second || c.VisibilityTimeout > 12*time.Hour {
		bad("PGTRAIL_VISIBILITY_TIMEOUT", "must be 2s to 12h, got %s", c.VisibilityTimeout)
	}
	if c.MaxVisibility < c.VisibilityTimeout || c.MaxVisibility > 12*time.Hour {
		bad("PGTRAIL_MAX_VISIBILITY", "must be from PGTRAIL_VISIBILITY_TIMEOUT to 12h, got %s", c.MaxVisibility)
	}
	if c.ShutdownGrace < 0 {
		bad("PGTRAIL_SHUTDOWN_GRACE", "must not be negative, got %s", c.ShutdownGrace)
	}
	if c.S3StallTimeout < time.Second || c.S3StallTimeout > time.Hour {
		bad("PGTRAIL_S3_STALL_TIMEOUT", "must be 1s to 1h, got %s", c.S3StallTimeout)
	}
	if c.MaxObjectBytes < 1<<10 {
		bad("PGTRAIL_MAX_OBJECT_BYTES", "must be at least 1024, got %d", c.MaxObjectBytes)
	}
	if c.MaxRecordBytes < 1<<10 || int64(c.MaxRecordBytes) > c.MaxObjectBytes {
		bad("PGTRAIL_MAX_RECORD_BYTES", "must be from 1024 to PGTRAIL_MAX_OBJECT_BYTES, got %d", c.MaxRecordBytes)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("PGTRAIL_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		bad("PGTRAIL_LOG_FORMAT", "must be json or console, got %q", c.LogFormat)
	}
	if c.RetentionDays < 0 || c.RetentionDays > maxRetentionDays {
		bad("PGTRAIL_RETENTION_DAYS", "must be 0 (keep everything) to %d, got %d", maxRetentionDays, c.RetentionDays)
	}
	if !roleName.MatchString(c.ReaderRole) || strings.HasPrefix(c.ReaderRole, "pg_") {
		bad("PGTRAIL_READER_ROLE", "must be a lower-case SQL name (a-z, 0-9, _; not pg_…), got %q", c.ReaderRole)
	}
	if !roleName.MatchString(c.WriterRole) || strings.HasPrefix(c.WriterRole, "pg_") {
		bad("PGTRAIL_WRITER_ROLE", "must be a lower-case SQL name (a-z, 0-9, _; not pg_…), got %q", c.WriterRole)
	} else if c.WriterRole == c.ReaderRole {
		bad("PGTRAIL_WRITER_ROLE", "must differ from PGTRAIL_READER_ROLE, both are %q", c.WriterRole)
	}
	return errors.Join(errs...)
}

// maxRetentionDays caps PGTRAIL_RETENTION_DAYS at a century.
const maxRetentionDays = 36500

// roleName is what PGTRAIL_READER_ROLE and PGTRAIL_WRITER_ROLE accept: a
// name that needs no quoting in SQL.
var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// dbMaxConns is the pool size: enough for every object in flight, the
// ledger look-ups and partition creation.
func (c *Config) dbMaxConns() int32 {
	if c.DBMaxConns > 0 {
		return int32(c.DBMaxConns)
	}
	return int32(c.ObjectConcurrency + 4)
}
