package sink

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LookupWriteProbe tries, through r's pool, what a reader must not do: it
// returns nil only if the session is not the reader role or could write.
func LookupWriteProbe(r *Reader) error {
	ctx := context.Background()
	var user string
	if err := r.pool.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil {
		return err
	}
	if user != DefaultReaderRole {
		return nil
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO cloudtrail_rejects (s3_bucket, s3_key, record_index, reason, raw) VALUES ('b', 'k', 0, 'r', 'x')`)
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	return nil
}

// LookupByWindows is LookupEvents as it read every range before it read
// whole partitions by their own statements: window by window
// (lookupWindows), as it still reads a range whose partitions' bounds are
// not all known. Tests compare the two.
func LookupByWindows(ctx context.Context, r *Reader, q LookupQuery) ([]LookupEvent, error) {
	w, hi, err := newLookupWalk(ctx, r, q)
	if err != nil {
		return nil, err
	}
	if err := r.windows(ctx, q.Start, hi, false, w.window); err != nil {
		return nil, err
	}
	return r.withDerived(ctx, w.out)
}

// SetBeforeBatch makes r call f before it sends each batch of partition
// statements.
func SetBeforeBatch(r *Reader, f func()) { r.beforeBatch = f }

// SetAfterWalk makes r call f when a page's walk ends, with the whole
// partitions it read and those the lookup summaries let it skip.
func SetAfterWalk(r *Reader, f func(walked, skipped int)) { r.afterWalk = f }

// PartitionPlans sums, over the statements of whole partitions prepared on
// one connection of r, how many times each was planned generic and custom
// (pg_prepared_statements), and counts them.
func PartitionPlans(r *Reader) (statements, generic, custom int64, err error) {
	err = r.pool.QueryRow(context.Background(), `
SELECT count(*), coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)
FROM pg_prepared_statements WHERE statement LIKE '%FROM cloudtrail_events\_2%'`).Scan(&statements, &generic, &custom)
	return statements, generic, custom, err
}

// PlanCacheMode is plan_cache_mode in a session of r's pool.
func PlanCacheMode(r *Reader) (string, error) {
	var mode string
	err := r.pool.QueryRow(context.Background(), `SHOW plan_cache_mode`).Scan(&mode)
	return mode, err
}

// IndexEntries counts the indexes whose catalog entries a session of r's
// pool holds ("index info" in pg_backend_memory_contexts), read as the
// login role (a superuser in tests), the session's role set again after.
func IndexEntries(r *Reader) (n int, err error) {
	ctx := context.Background()
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	var role string
	if err := c.QueryRow(ctx, `SELECT current_user`).Scan(&role); err != nil {
		return 0, err
	}
	if _, err := c.Exec(ctx, `RESET ROLE`); err != nil {
		return 0, err
	}
	err = c.QueryRow(ctx, `SELECT count(*) FROM pg_backend_memory_contexts WHERE name = 'index info'`).Scan(&n)
	if _, serr := c.Exec(ctx, "SET ROLE "+pgx.Identifier{role}.Sanitize()); serr != nil && err == nil {
		err = serr
	}
	return n, err
}

// PoolConns counts the connections r's pool holds.
func PoolConns(r *Reader) int { return int(r.pool.Stat().TotalConns()) }
