// Package sink stores CloudTrail events in PostgreSQL.
//
// Postgres owns a pgx pool. It owns the types of what it is given to write
// (object.go) and has one method per way of giving them: WriteBuffered
// stores a batch of objects decoded whole in one transaction, with one
// ledger row per object, so that an object is stored exactly once or not at
// all: their events go by binary COPY straight into cloudtrail_events once
// known duplicates are dropped (batch.go, copy.go). WriteStreamed stores one
// object too big to hold in memory; it, and a batch whose COPY still meets a
// duplicate, go through a per-connection staging table and INSERT … ON
// CONFLICT DO NOTHING (write.go). sink imports cloudtrail for the entries
// it stores, never the worker that gives them.
package sink

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Config is what Open needs.
type Config struct {
	// URL is the libpq-style connection string (DATABASE_URL).
	URL string
	// MaxConns caps the pool; 0 leaves pgx's default.
	MaxConns int32
	// ReaderRole and WriterRole name the roles that Migrate creates (if
	// absent) and grants to; empty means DefaultReaderRole and
	// DefaultWriterRole. See migrations/0005_roles.sql.
	ReaderRole, WriterRole string
	// RetentionDays, when above 0, is the retention floor that Migrate
	// records when it runs as the owner: pgtrail_drop_partitions_before then
	// refuses, whoever calls it, a cutoff less than that many days before
	// today. 0 leaves the recorded floor as it is. See floor.go.
	RetentionDays int
	// WarmConns, for OpenReader, is how many connections the reader's pool
	// keeps open (opening them in the background, and at once by
	// Reader.Warm); when above 0, every connection of the pool, when it
	// opens, plans a statement on every partition so that its session
	// holds their catalog entries before a lookup needs them: most of what
	// a connection's first walk through a year cost (docs/lookup.md). 0,
	// for a single lookup, opens connections as lookups need them and
	// warms none.
	WarmConns int32
}

// The roles' names when Config leaves them empty.
const (
	DefaultReaderRole = "pgtrail_reader"
	DefaultWriterRole = "pgtrail_writer"
)

// Postgres is the PostgreSQL sink. It is safe for concurrent use.
type Postgres struct {
	pool  *pgxpool.Pool
	log   *zap.Logger
	roles [2]string // reader, writer
	// retentionDays is Config.RetentionDays.
	retentionDays int

	mu   sync.Mutex
	days map[int64]bool // UTC days (Unix days) whose partition is known to exist
	// schema is what features found, once featuresKnown.
	featuresKnown bool
	schema        schemaFeatures

	// clean counts the latest buffered batches in a row that found no
	// stored duplicate (see writeBuffered).
	clean atomic.Int64

	// matcher raises the alerts of the events a write inserts; nil for
	// none (alerts.go).
	matcher Matcher
}

// Open connects to the database. It does not run migrations.
func Open(ctx context.Context, cfg Config, log *zap.Logger) (*Postgres, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %w", scrub(err, cfg.URL))
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "pgtrail"
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, stagingDDL)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", scrub(err, cfg.URL))
	}
	roles := [2]string{cmp.Or(cfg.ReaderRole, DefaultReaderRole), cmp.Or(cfg.WriterRole, DefaultWriterRole)}
	return &Postgres{pool: pool, log: log, roles: roles, retentionDays: cfg.RetentionDays, days: map[int64]bool{}}, nil
}

// Pool exposes the connection pool to the commands that query it directly.
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// Ping checks that the database answers.
func (p *Postgres) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes every connection.
func (p *Postgres) Close() { p.pool.Close() }

// Processed reports whether the ledger holds the object.
func (p *Postgres) Processed(ctx context.Context, bucket, key string) (bool, error) {
	var ok bool
	err := p.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM cloudtrail_objects WHERE s3_bucket = $1 AND s3_key = $2)`,
		bucket, key).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres: ledger lookup: %w", classify(err))
	}
	return ok, nil
}
