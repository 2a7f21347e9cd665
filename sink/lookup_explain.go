package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ExplainLookupPartition returns the plans of the statement that reads the
// whole partition holding at for q, as a lookup's walk runs it: prepared,
// with a generic plan, and run twice with EXPLAIN (ANALYZE, BUFFERS), the
// first run planning it (what a connection pays once), the second reusing
// the plan (what every later page pays).
func (r *Reader) ExplainLookupPartition(ctx context.Context, q LookupQuery, at time.Time) (first, then string, err error) {
	set, err := r.partitions(ctx)
	if err != nil {
		return "", "", err
	}
	var table string
	for _, p := range set.parts {
		if !at.Before(p.lo) && at.Before(p.hi) {
			table = p.name
		}
	}
	if table == "" {
		return "", "", errors.New("lookup: explain: no partition of known bounds holds that time")
	}
	sql, args, err := partitionSQL(q, table, q.Limit)
	if err != nil {
		return "", "", err
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return "", "", fmt.Errorf("postgres: explain lookup: %w", classify(err))
	}
	defer conn.Release()
	c := conn.Conn()
	defer func() {
		if err != nil {
			// The session may be left with the generic mode set: close it,
			// so that the pool opens a fresh one.
			_ = c.Close(ctx)
		}
	}()
	params := make([]string, len(args))
	for i := range args {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	for _, stmt := range []string{`SET plan_cache_mode = force_generic_plan`, `PREPARE pgtrail_explain AS ` + sql} {
		if _, err := c.Exec(ctx, stmt); err != nil {
			return "", "", fmt.Errorf("postgres: explain lookup: %w", classify(err))
		}
	}
	var plans [2]string
	for i := range plans {
		// EXECUTE takes its values as literals: the simple protocol
		// writes them so.
		rows, err := c.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE pgtrail_explain("+strings.Join(params, ", ")+")",
			append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
		if err != nil {
			return "", "", fmt.Errorf("postgres: explain lookup: %w", classify(err))
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return "", "", fmt.Errorf("postgres: explain lookup: %w", classify(err))
		}
		plans[i] = strings.Join(lines, "\n")
	}
	for _, stmt := range []string{`DEALLOCATE pgtrail_explain`, `RESET plan_cache_mode`} {
		if _, err := c.Exec(ctx, stmt); err != nil {
			return "", "", fmt.Errorf("postgres: explain lookup: %w", classify(err))
		}
	}
	return plans[0], plans[1], nil
}
