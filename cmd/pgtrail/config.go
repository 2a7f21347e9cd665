package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/web"
)

// Config is everything pgtrail reads from its environment. The AWS SDK reads
// its own standard variables (AWS_REGION, AWS_ENDPOINT_URL, credentials,
// AWS_PROFILE, role chains) itself.
//
// Values are read with the spaces around them removed. A number, duration
// or boolean set to nothing counts as unset and takes its default; a string
// set to nothing is empty. A field's want tag says what its variable takes,
// in the words of the error that refuses a value.
type Config struct {
	// DatabaseURL is the PostgreSQL connection string, URL or key=value
	// form; sslmode, sslrootcert and friends are honoured.
	DatabaseURL string `env:"DATABASE_URL"`
	// QueueURL is the SQS queue that receives the notifications (run only).
	QueueURL string `env:"SQS_QUEUE_URL" want:"a queue URL such as https://sqs.eu-west-1.amazonaws.com/111122223333/pgtrail"`
	// S3ForcePathStyle addresses buckets as endpoint/bucket/key, which
	// S3-compatible stores and local emulators need.
	S3ForcePathStyle bool `env:"S3_FORCE_PATH_STYLE, default=false" want:"true or false"`

	// Pollers is the number of concurrent SQS long polls.
	Pollers int `env:"PGTRAIL_POLLERS, default=2" want:"an integer from 1 to 100"`
	// MaxInFlight caps the messages processed at once; 0 means 10×Pollers.
	MaxInFlight int `env:"PGTRAIL_MAX_IN_FLIGHT, default=0" want:"an integer from 0 (10 × PGTRAIL_POLLERS) to 10000"`
	// ObjectConcurrency caps the objects fetched and written at once.
	ObjectConcurrency int `env:"PGTRAIL_OBJECT_CONCURRENCY, default=8" want:"an integer from 1 to 1000"`
	// DBMaxConns caps the database pool; 0 means ObjectConcurrency+4.
	DBMaxConns int `env:"PGTRAIL_DB_MAX_CONNS, default=0" want:"an integer from 0 (PGTRAIL_OBJECT_CONCURRENCY + 4) to 10000"`
	// WaitTime is the SQS long-poll wait.
	WaitTime time.Duration `env:"PGTRAIL_WAIT_TIME, default=20s" want:"a duration from 1s to 20s"`
	// VisibilityTimeout is set at receive and renewed every half period
	// while a message is processed.
	VisibilityTimeout time.Duration `env:"PGTRAIL_VISIBILITY_TIMEOUT, default=60s" want:"a duration from 2s to 12h"`
	// MaxVisibility is how long one message may be held in all.
	MaxVisibility time.Duration `env:"PGTRAIL_MAX_VISIBILITY, default=1h" want:"a duration from PGTRAIL_VISIBILITY_TIMEOUT to 12h"`
	// ShutdownGrace is how long in-flight messages may take to finish after
	// SIGTERM or SIGINT; 0s releases them at once.
	ShutdownGrace time.Duration `env:"PGTRAIL_SHUTDOWN_GRACE, default=30s" want:"a duration of 0s or more"`
	// S3StallTimeout is how long a GetObject may wait for S3's answer or
	// for the next bytes of the body before the attempt is retried.
	S3StallTimeout time.Duration `env:"PGTRAIL_S3_STALL_TIMEOUT, default=30s" want:"a duration from 1s to 1h"`
	// MaxObjectBytes caps one object's decompressed size.
	MaxObjectBytes int64 `env:"PGTRAIL_MAX_OBJECT_BYTES, default=2147483648" want:"an integer of 1024 or more"`
	// MaxRecordBytes caps one record's size.
	MaxRecordBytes int `env:"PGTRAIL_MAX_RECORD_BYTES, default=4194304" want:"an integer from 1024 to PGTRAIL_MAX_OBJECT_BYTES"`
	// AllowedBuckets, when set, is the comma-separated list of buckets a
	// notification may name; others are refused.
	AllowedBuckets []string `env:"PGTRAIL_ALLOWED_BUCKETS"`
	// AllowedPrefixes, when set, is the comma-separated list of key
	// prefixes a notification may name.
	AllowedPrefixes []string `env:"PGTRAIL_ALLOWED_PREFIXES"`
	// Migrate makes run apply migrations at start.
	Migrate bool `env:"PGTRAIL_MIGRATE, default=true" want:"true or false"`
	// Citus makes pgtrail migrate distribute the tables over the Citus
	// cluster whose coordinator DATABASE_URL names, after the migrations
	// (migrations/citus/distribute.sql, docs/scaling.md); it refuses if the
	// citus extension is not installed. Unset, a database with the
	// extension is migrated as plain PostgreSQL, and migrate says so.
	Citus bool `env:"PGTRAIL_CITUS, default=false" want:"true or false"`
	// RetentionDays is how many days of events to keep: run drops, once an
	// hour, the day partitions wholly older than that, and pgtrail
	// retention does so on demand. 0 keeps everything. Migrating as the
	// owner also records it as the retention floor, below which the database
	// refuses retention to any caller (docs/analysts.md).
	RetentionDays int `env:"PGTRAIL_RETENTION_DAYS, default=0" want:"an integer from 0 (keep everything) to 36500"`
	// ReaderRole is the role that migrations create, unless it exists, and
	// allow to read events, views, ledger and rejects: grant it to analysts.
	// It is read when a migration runs; keep it set the same.
	ReaderRole string `env:"PGTRAIL_READER_ROLE, default=pgtrail_reader" want:"a lower-case SQL name (a-z, 0-9, _; not pg_…)"`
	// WriterRole is the role that migrations create, unless it exists, and
	// allow to store events: grant it to the workers' login role.
	WriterRole string `env:"PGTRAIL_WRITER_ROLE, default=pgtrail_writer" want:"a lower-case SQL name (a-z, 0-9, _; not pg_…)"`
	// HTTPAddr serves /metrics, /healthz and /readyz; empty disables it.
	HTTPAddr string `env:"PGTRAIL_HTTP_ADDR, default=:9090"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"PGTRAIL_LOG_LEVEL, default=info" want:"debug, info, warn or error"`
	// LogFormat is json or console.
	LogFormat string `env:"PGTRAIL_LOG_FORMAT, default=json" want:"json or console"`
	// CPUProfile, when set, is a file the command writes a pprof CPU
	// profile of its whole run to, for performance work.
	CPUProfile string `env:"PGTRAIL_CPU_PROFILE"`

	// Alerts (docs/alerts.md; checked in config_alerts.go).
	//
	// Rules names the Sigma rules evaluated on every newly stored event: a
	// comma-separated list of files and folders, in which the word builtin
	// stands for the built-in pack; unset is the built-in pack alone, and
	// off raises no alerts.
	Rules string `env:"PGTRAIL_RULES"`
	// AlertMaxAge: alerts for events older than this are stored but not
	// sent, so that a backfill pages no one; 0s sends them whatever their age.
	AlertMaxAge time.Duration `env:"PGTRAIL_ALERT_MAX_AGE, default=24h" want:"a duration of 0s (send whatever the age) or more"`
	// AlertSNSTopicARN is the SNS topic alerts are published to.
	AlertSNSTopicARN string `env:"PGTRAIL_ALERT_SNS_TOPIC_ARN" want:"a topic ARN such as arn:aws:sns:eu-west-1:111122223333:pgtrail-alerts"`
	// AlertWebhookURL receives alerts signed as Standard Webhooks does,
	// with AlertWebhookSecret (whsec_ and a base64 key).
	AlertWebhookURL    string `env:"PGTRAIL_ALERT_WEBHOOK_URL" want:"an http or https URL"`
	AlertWebhookSecret string `env:"PGTRAIL_ALERT_WEBHOOK_SECRET" want:"whsec_ and a base64 key of 24 to 64 bytes"`
	// AlertSlackWebhookURL is a Slack-compatible incoming webhook.
	AlertSlackWebhookURL string `env:"PGTRAIL_ALERT_SLACK_WEBHOOK_URL" want:"an http or https URL"`
	// AlertThrottle alerts of one rule are sent one by one per
	// AlertThrottleWindow; the rest are told in one summary when the window
	// closes. 0 sends every alert.
	AlertThrottle       int           `env:"PGTRAIL_ALERT_THROTTLE, default=20" want:"an integer from 0 (no throttle) to 100000"`
	AlertThrottleWindow time.Duration `env:"PGTRAIL_ALERT_THROTTLE_WINDOW, default=15m" want:"a duration from 1m to 24h"`

	// API is pgtrail serve's LookupEvents API: the PGTRAIL_API_* variables
	// (docs/lookup.md). They are parsed for every command, like the others,
	// and checked (API.Validate) by serve, the one command that uses them.
	API lookup.Config
	// Web is the event-history page that serve puts beside the API: the
	// PGTRAIL_WEB* variables (docs/web.md), checked (Web.Validate) by serve.
	Web web.Config

	// Integrity (docs/integrity.md; config_integrity.go).
	//
	// Integrity makes run and backfill check CloudTrail's digest files;
	// false skips them.
	Integrity bool `env:"PGTRAIL_INTEGRITY, default=true" want:"true or false"`
	// DigestKeys is a folder of the public keys that sign digests, one
	// FINGERPRINT.pem or FINGERPRINT.der per key, for installations that
	// cannot call CloudTrail's ListPublicKeys; unset asks CloudTrail.
	DigestKeys string `env:"PGTRAIL_DIGEST_KEYS"`
	// IntegrityGrace is how long after its delivery a log file may wait
	// for a digest to list it before it is reported not_listed.
	IntegrityGrace time.Duration `env:"PGTRAIL_INTEGRITY_GRACE, default=2h" want:"a duration from 1h to 48h"`
}

// loadConfig reads the environment through lookup.
func loadConfig(ctx context.Context, lookup envconfig.Lookuper) (*Config, error) {
	var c Config
	lookup = trimmed{lookup}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: lookup}); err != nil {
		return nil, parseError(err, lookup)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// variable is one field of Config as its environment variable.
type variable struct {
	field, name, want string
	// valued is a number, duration or boolean: set to nothing, it is unset.
	valued bool
}

// variables are Config's fields, by variable name, those of its nested
// structs (API) included.
var variables = func() map[string]variable {
	vs := map[string]variable{}
	addFields(vs, reflect.TypeFor[Config](), "")
	return vs
}()

// addFields adds t's fields to vs. A field of a nested struct is named as
// envconfig's errors name it: "API: Rate".
func addFields(vs map[string]variable, t reflect.Type, path string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		k := f.Type.Kind()
		if name == "" && k == reflect.Struct {
			addFields(vs, f.Type, path+f.Name+": ")
			continue
		}
		vs[name] = variable{field: path + f.Name, name: name, want: f.Tag.Get("want"),
			valued: k == reflect.Bool || (k >= reflect.Int && k <= reflect.Float64)}
	}
}

// trimmed reads values through l with the spaces around them removed, and
// takes a number, duration or boolean set to nothing for unset.
type trimmed struct{ l envconfig.Lookuper }

func (t trimmed) Lookup(key string) (string, bool) {
	v, ok := t.l.Lookup(key)
	v = strings.TrimSpace(v)
	if ok && v == "" && variables[key].valued {
		return "", false
	}
	return v, ok
}

// parseError rewrites an envconfig error, which names the struct field and
// says what the parser said (strconv.ParseInt: parsing "abc": invalid
// syntax), to name the variable and say what it takes: PGTRAIL_POLLERS: want
// an integer from 1 to 100, got abc.
func parseError(err error, lookup envconfig.Lookuper) error {
	msg := err.Error()
	for _, v := range variables {
		if rest, ok := strings.CutPrefix(msg, v.field+":"); ok {
			if raw, set := lookup.Lookup(v.name); set && v.want != "" {
				return fmt.Errorf("config: %s: want %s, got %s", v.name, v.want, shown(raw))
			}
			return fmt.Errorf("config: %s:%s", v.name, rest)
		}
	}
	return fmt.Errorf("config: %s", msg)
}

// shown is a value as an error shows it: as it is, or "" when empty.
func shown(v any) string {
	if s := fmt.Sprint(v); s != "" {
		return s
	}
	return `""`
}

// Validate checks values that parse but make no sense, naming the variable.
func (c *Config) Validate() error {
	var errs []error
	// bad refuses the value got of the variable name with what it wants.
	bad := func(name string, got any) {
		errs = append(errs, fmt.Errorf("config: %s: want %s, got %s", name, variables[name].want, shown(got)))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("config: DATABASE_URL: required"))
	}
	if c.QueueURL != "" && !isQueueURL(c.QueueURL) {
		bad("SQS_QUEUE_URL", c.QueueURL)
	}
	if c.Pollers < 1 || c.Pollers > 100 {
		bad("PGTRAIL_POLLERS", c.Pollers)
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > 10000 {
		bad("PGTRAIL_MAX_IN_FLIGHT", c.MaxInFlight)
	}
	if c.ObjectConcurrency < 1 || c.ObjectConcurrency > 1000 {
		bad("PGTRAIL_OBJECT_CONCURRENCY", c.ObjectConcurrency)
	}
	if c.DBMaxConns < 0 || c.DBMaxConns > 10000 {
		bad("PGTRAIL_DB_MAX_CONNS", c.DBMaxConns)
	}
	if c.WaitTime < time.Second || c.WaitTime > 20*time.Second {
		bad("PGTRAIL_WAIT_TIME", c.WaitTime)
	}
	if c.VisibilityTimeout < 2*time.Second || c.VisibilityTimeout > 12*time.Hour {
		bad("PGTRAIL_VISIBILITY_TIMEOUT", c.VisibilityTimeout)
	}
	if c.MaxVisibility < c.VisibilityTimeout || c.MaxVisibility > 12*time.Hour {
		bad("PGTRAIL_MAX_VISIBILITY", c.MaxVisibility)
	}
	if c.ShutdownGrace < 0 {
		bad("PGTRAIL_SHUTDOWN_GRACE", c.ShutdownGrace)
	}
	if c.S3StallTimeout < time.Second || c.S3StallTimeout > time.Hour {
		bad("PGTRAIL_S3_STALL_TIMEOUT", c.S3StallTimeout)
	}
	if c.MaxObjectBytes < 1<<10 {
		bad("PGTRAIL_MAX_OBJECT_BYTES", c.MaxObjectBytes)
	}
	if c.MaxRecordBytes < 1<<10 || int64(c.MaxRecordBytes) > c.MaxObjectBytes {
		bad("PGTRAIL_MAX_RECORD_BYTES", c.MaxRecordBytes)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("PGTRAIL_LOG_LEVEL", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		bad("PGTRAIL_LOG_FORMAT", c.LogFormat)
	}
	if c.RetentionDays < 0 || c.RetentionDays > maxRetentionDays {
		bad("PGTRAIL_RETENTION_DAYS", c.RetentionDays)
	}
	if !roleName.MatchString(c.ReaderRole) || strings.HasPrefix(c.ReaderRole, "pg_") {
		bad("PGTRAIL_READER_ROLE", c.ReaderRole)
	}
	if !roleName.MatchString(c.WriterRole) || strings.HasPrefix(c.WriterRole, "pg_") {
		bad("PGTRAIL_WRITER_ROLE", c.WriterRole)
	} else if c.WriterRole == c.ReaderRole {
		errs = append(errs, fmt.Errorf("config: PGTRAIL_WRITER_ROLE: must differ from PGTRAIL_READER_ROLE, both are %s", c.WriterRole))
	}
	errs = append(errs, c.validateAlerts()...)
	errs = append(errs, c.validateIntegrity()...)
	return errors.Join(errs...)
}

// isQueueURL reports whether s looks like a queue URL: http or https, a
// host, and a path that ends in the queue's name.
func isQueueURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		strings.Trim(u.Path, "/") != "" && !strings.HasSuffix(u.Path, "/")
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
