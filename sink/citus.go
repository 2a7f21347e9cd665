package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/migrations"
)

// Citus. pgtrail's SQL runs unchanged on a Citus coordinator once the
// tables are distributed, which pgtrail does only when asked
// (PGTRAIL_CITUS=true): distributing a populated database copies every
// row into shards, takes locks on every partition and shard, and is not
// undone by running pgtrail again. The layout is plain SQL, in
// migrations/citus/distribute.sql; docs/scaling.md explains it.

// CitusInstalled reports whether the citus extension is installed in the
// database.
func (p *Postgres) CitusInstalled(ctx context.Context) (bool, error) {
	var ok bool
	err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus')`).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres: find the citus extension: %w", err)
	}
	return ok, nil
}

// Distribute lays pgtrail's tables out over the Citus cluster whose
// coordinator this database is (migrations/citus/distribute.sql), in one
// transaction, under the migrations' advisory lock; tables that Citus
// manages already are left as they are. It refuses, changing nothing, if
// the citus extension is not installed. Run it after Migrate, as the
// tables' owner.
func (p *Postgres) Distribute(ctx context.Context) error {
	ok, err := p.CitusInstalled(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("citus: PGTRAIL_CITUS=true, but the citus extension is not installed in this database: " +
			"run CREATE EXTENSION citus on the coordinator and add the workers first, or unset PGTRAIL_CITUS for plain PostgreSQL (docs/scaling.md)")
	}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("citus: acquire: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("citus: lock: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(ctx, `SELECT pg_catalog.pg_advisory_unlock($1)`, migrateLockKey)
	}()

	// The distribution locks every partition, its indexes and its shards
	// at once: say so before it runs out of them.
	if b, err := readLockBudget(ctx, conn); err == nil && b.Short() {
		p.log.Warn("citus: "+b.Warning(), zap.Int("recommended", b.Recommended()))
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, migrations.CitusDistribute)
		return err
	})
	if err != nil {
		return fmt.Errorf("citus: distribute (migrations/citus/distribute.sql): %w", ownerHint(err))
	}
	rows, _ := conn.Query(ctx, `SELECT logicalrelid::text, coalesce(column_to_column_name(logicalrelid, partkey), '') FROM pg_dist_partition
        WHERE logicalrelid::text OPERATOR(pg_catalog.=) ANY($1) ORDER BY 1`, citusTables)
	layout, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var table, column string
		err := r.Scan(&table, &column)
		if column == "" {
			return table + " (reference)", err
		}
		return table + " by " + column, err
	})
	if err != nil {
		return fmt.Errorf("citus: read the layout: %w", err)
	}
	p.log.Info("citus: tables distributed", zap.Strings("tables", layout))
	return nil
}

// citusTables are the tables that distribute.sql lays out.
var citusTables = []string{"cloudtrail_events", "cloudtrail_objects", "cloudtrail_rejects", "cloudtrail_failures",
	"pgtrail_schema_migrations", "pgtrail_retention_floor", "cloudtrail_alerts", "cloudtrail_alert_deliveries", "cloudtrail_alert_summaries"}
