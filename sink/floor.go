package sink

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// floorVersion is the migration that creates pgtrail_retention_floor.
const floorVersion = 7

// recordRetentionFloor keeps the database's retention floor at
// Config.RetentionDays, the owner's PGTRAIL_RETENTION_DAYS. The floor binds
// pgtrail_drop_partitions_before for every caller, so that a stolen writer
// credential cannot drop more than the owner's retention allows.
//
// Only a role that may write the floor's table (the owner) records it; for
// others, the writer among them, it is enough to warn when their own
// retention would be refused. With RetentionDays 0 the floor stays as it is.
func (p *Postgres) recordRetentionFloor(ctx context.Context, conn *pgx.Conn) error {
	if p.retentionDays <= 0 {
		return nil
	}
	var may bool
	var floor *int
	err := conn.QueryRow(ctx, `SELECT pg_catalog.has_table_privilege('pgtrail_retention_floor', 'INSERT')
            AND pg_catalog.has_table_privilege('pgtrail_retention_floor', 'UPDATE'),
        (SELECT days FROM pgtrail_retention_floor)`).Scan(&may, &floor)
	if err != nil {
		return fmt.Errorf("migrate: read retention floor: %w", classify(err))
	}
	switch {
	case floor != nil && *floor == p.retentionDays:
		return nil
	case !may:
		if floor != nil && p.retentionDays < *floor {
			p.log.Warn("retention floor above PGTRAIL_RETENTION_DAYS: the database will refuse this retention; the owner lowers the floor with pgtrail migrate",
				zap.Int("retention_days", p.retentionDays), zap.Int("floor_days", *floor))
		}
		return nil
	}
	if _, err := conn.Exec(ctx, `INSERT INTO pgtrail_retention_floor (days) VALUES ($1)
        ON CONFLICT (only_row) DO UPDATE SET days = excluded.days, recorded_at = excluded.recorded_at`, p.retentionDays); err != nil {
		return fmt.Errorf("migrate: record retention floor: %w", classify(err))
	}
	fields := []zap.Field{zap.Int("floor_days", p.retentionDays)}
	if floor != nil {
		fields = append(fields, zap.Int("previous_floor_days", *floor))
	}
	p.log.Info("retention floor recorded", fields...)
	return nil
}
