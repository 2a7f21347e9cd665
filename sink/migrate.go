package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/migrations"
)

// migrateLockKey is the advisory lock that serializes migrations across
// every worker sharing the database.
const migrateLockKey int64 = 0x70677472_61696c01 // "pgtrail" + 1

// Migrate applies the embedded migrations that the database lacks, in order,
// each in its own transaction. Workers that start together wait for each
// other on an advisory lock; when the schema is current it changes nothing.
// It returns the versions it applied.
func (p *Postgres) Migrate(ctx context.Context) ([]int, error) {
	all, err := migrations.All()
	if err != nil {
		return nil, err
	}
	return p.migrate(ctx, all)
}

// migrate applies those of all that the database lacks.
func (p *Postgres) migrate(ctx context.Context, all []migrations.Migration) ([]int, error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: acquire: %w", classify(err))
	}
	defer conn.Release()

	// Migrations run as the owner: the builtins this code calls are named
	// pg_catalog.x, so that no function that another role created in the
	// schema runs in their place.
	if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", classify(err))
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(ctx, `SELECT pg_catalog.pg_advisory_unlock($1)`, migrateLockKey)
	}()

	// A role without CREATE on the schema (the writer) may still check
	// that the schema is current.
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.to_regclass('pgtrail_schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrate: find version table: %w", classify(err))
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS pgtrail_schema_migrations (
        version    integer     PRIMARY KEY,
        name       text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return nil, fmt.Errorf("migrate: create version table: %w", ownerHint(classify(err)))
		}
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM pgtrail_schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate: read versions: %w", classify(err))
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("migrate: read versions: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read versions: %w", classify(err))
	}

	var done []int
	// What the writer learned of the schema may change.
	defer p.forgetFeatures()
	for _, m := range all {
		if applied[m.Version] {
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return done, fmt.Errorf("migrate: %s: begin: %w", m.Name, classify(err))
		}
		// The role names reach the SQL as settings local to the transaction.
		if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('pgtrail.reader_role', $1, true), pg_catalog.set_config('pgtrail.writer_role', $2, true)`,
			p.roles[0], p.roles[1]); err != nil {
			_ = tx.Rollback(ctx)
			return done, fmt.Errorf("migrate: %s: set roles: %w", m.Name, classify(err))
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			_ = tx.Rollback(ctx)
			return done, fmt.Errorf("migrate: %s: %w", m.Name, ownerHint(err))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pgtrail_schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			_ = tx.Rollback(ctx)
			return done, fmt.Errorf("migrate: %s: record version: %w", m.Name, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return done, fmt.Errorf("migrate: %s: commit: %w", m.Name, classify(err))
		}
		p.log.Info("migration applied", zap.Int("version", m.Version), zap.String("name", m.Name))
		done = append(done, m.Version)
	}
	if slices.ContainsFunc(all, func(m migrations.Migration) bool { return m.Version == floorVersion }) {
		if err := p.recordRetentionFloor(ctx, conn.Conn()); err != nil {
			return done, err
		}
	}
	p.warnSchemaCreate(ctx, conn.Conn())
	p.warnLockBudget(ctx, conn.Conn())
	return done, nil
}

// warnSchemaCreate logs a warning while PUBLIC, the reader or the writer may
// create objects in the schema that pgtrail's sessions search (the first of
// their search_path): a function planted there that matches a call better
// than the builtin runs instead of it, with the rights of the session that
// makes the call. Migration 0007 revokes PUBLIC's CREATE where the
// migrating role owns the schema; this catches the rest, and a grant made
// later.
func (p *Postgres) warnSchemaCreate(ctx context.Context, conn *pgx.Conn) {
	rows, _ := conn.Query(ctx, `SELECT r FROM pg_catalog.unnest(ARRAY['public', $1, $2]::text[]) r
        WHERE CASE WHEN r = 'public' OR EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r)
                   THEN pg_catalog.has_schema_privilege(r, pg_catalog.current_schema(), 'CREATE') END`,
		p.roles[0], p.roles[1])
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	switch {
	case err != nil:
		p.log.Warn("migrate: check who may create in the schema", zap.Error(err))
	case len(roles) > 0:
		p.log.Warn("roles other than the owner may create objects in pgtrail's schema, where functions they plant can run with the rights of pgtrail's sessions; revoke CREATE on the schema from them (docs/analysts.md)",
			zap.Strings("roles", roles))
	}
}

// ownerHint adds to a migration's error the server's hint, if any, and to a
// permission error the likely cause: migrations must run as the schema's
// owner, not as the writer or reader role.
func ownerHint(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	if pgErr.Code == "42501" { // insufficient_privilege
		return fmt.Errorf("%w (run pgtrail migrate as the schema's owner, and set PGTRAIL_MIGRATE=false for workers that connect as the writer role)", err)
	}
	if pgErr.Hint != "" {
		return fmt.Errorf("%w (%s)", err, pgErr.Hint)
	}
	return err
}

func zapDay(t time.Time) zap.Field { return zap.String("day", t.Format(time.DateOnly)) }
