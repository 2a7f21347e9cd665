package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// The lock table. A query over cloudtrail_events that no time bound prunes
// (a ct_* view, an analyst's count(*), a generic plan) locks every
// partition and each of its indexes, for the rest of its transaction: a
// year of daily partitions with pgtrail's 12 indexes is about 4,700 locks.
// PostgreSQL keeps them in one shared table of max_locks_per_transaction ×
// (max_connections + max_prepared_transactions) entries; once it is full,
// every session's next lock fails with "out of shared memory" (53200), the
// writer's included. On Citus each worker locks, per query, every shard of
// every partition it holds (docs/scaling.md).

// LockHeadroomQueries is how many queries over every partition the lock
// table must hold at once for LockBudget not to warn: a few analysts and
// pgtrail's own sessions.
const LockHeadroomQueries = 10

// LockBudget compares the lock table with what queries over every
// partition of cloudtrail_events take.
type LockBudget struct {
	// The server's settings.
	MaxLocksPerTransaction, MaxConnections, MaxPreparedTransactions int
	// Partitions are cloudtrail_events' partitions; Indexes, the indexes
	// of the table, each of which every partition has.
	Partitions, Indexes int
}

// Table is the number of locks the shared lock table holds.
func (b LockBudget) Table() int {
	return b.MaxLocksPerTransaction * (b.MaxConnections + b.MaxPreparedTransactions)
}

// PerQuery is the number of locks one query over every partition takes:
// the table and its indexes, and each partition and its indexes.
func (b LockBudget) PerQuery() int { return (b.Partitions + 1) * (b.Indexes + 1) }

// Short reports whether the lock table holds fewer than
// LockHeadroomQueries queries over every partition; never without
// partitions.
func (b LockBudget) Short() bool {
	return b.Partitions > 0 && b.Table() < LockHeadroomQueries*b.PerQuery()
}

// Recommended is the smallest max_locks_per_transaction, in steps of 64,
// with which the lock table holds LockHeadroomQueries queries over every
// partition, and never less than the current setting.
func (b LockBudget) Recommended() int {
	slots := max(b.MaxConnections+b.MaxPreparedTransactions, 1)
	need := (LockHeadroomQueries*b.PerQuery() + slots - 1) / slots
	need = (need + 63) / 64 * 64
	return max(need, b.MaxLocksPerTransaction)
}

// Warning is the advice for an operator when the budget is Short; "" when
// it is not.
func (b LockBudget) Warning() string {
	if !b.Short() {
		return ""
	}
	return fmt.Sprintf("the lock table is small for cloudtrail_events: a query over all %d partitions and their %d indexes takes %d locks, "+
		"and the lock table holds %d (max_locks_per_transaction %d × (max_connections %d + max_prepared_transactions %d)) for every session at once; "+
		"set max_locks_per_transaction = %d (a restart is needed), or keep fewer partitions (docs/scaling.md)",
		b.Partitions, b.Indexes, b.PerQuery(), b.Table(), b.MaxLocksPerTransaction, b.MaxConnections, b.MaxPreparedTransactions, b.Recommended())
}

// lockBudget reads the settings and counts the partitions and indexes of
// cloudtrail_events from the catalog. It runs in the owner's migrations
// and the reader's status, with the schema on the search_path: every
// operator is pg_catalog's by name, so that none planted in the schema
// (an exact match for oid = regclass, say) runs instead.
const lockBudget = `SELECT
    (SELECT setting::int FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'max_locks_per_transaction'),
    (SELECT setting::int FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'max_connections'),
    (SELECT setting::int FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'max_prepared_transactions'),
    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_inherits WHERE inhparent OPERATOR(pg_catalog.=) t.oid)::int,
    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_index WHERE indrelid OPERATOR(pg_catalog.=) t.oid)::int
FROM (SELECT pg_catalog.to_regclass('cloudtrail_events') AS oid) t WHERE t.oid IS NOT NULL`

// readLockBudget reads the LockBudget; the zero LockBudget, which is not
// Short, if cloudtrail_events does not exist.
func readLockBudget(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
},
) (LockBudget, error) {
	var b LockBudget
	err := q.QueryRow(ctx, lockBudget).Scan(&b.MaxLocksPerTransaction, &b.MaxConnections, &b.MaxPreparedTransactions, &b.Partitions, &b.Indexes)
	if errors.Is(err, pgx.ErrNoRows) {
		return LockBudget{}, nil
	}
	if err != nil {
		return LockBudget{}, fmt.Errorf("postgres: lock table: %w", err)
	}
	return b, nil
}

// warnLockBudget logs LockBudget's warning, if any, after a migration.
func (p *Postgres) warnLockBudget(ctx context.Context, conn *pgx.Conn) {
	b, err := readLockBudget(ctx, conn)
	switch {
	case err != nil:
		p.log.Warn("migrate: check the lock table", zap.Error(err))
	case b.Short():
		p.log.Warn(b.Warning(), zap.Int("max_locks_per_transaction", b.MaxLocksPerTransaction), zap.Int("recommended", b.Recommended()),
			zap.Int("partitions", b.Partitions), zap.Int("locks_per_query", b.PerQuery()))
	}
}
