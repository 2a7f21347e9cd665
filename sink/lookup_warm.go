package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A session reads a partition's catalog entries the first time it plans a
// statement on it: the table's and every index's, their expressions and
// predicates (the lookup derivations, parsed and inlined again for each
// partition), the sizes of their files, and the statistics of the columns
// the statement reads and filters on. For a year of day partitions that
// was about half of a new connection's first walk (220 to 240 ms of 260
// to 520), and the session keeps them: 52 MB for 366 partitions
// (pg_backend_memory_contexts). A server's reader pool reads them when a
// connection opens, before a lookup waits on it (Config.WarmConns); a
// shape's first walk on it then plans its statements only.

// warmChunk is how many partitions one message of warmCatalogs plans: each
// plan locks its partition and every index of it until the message's
// transaction ends, as a batch of the walk's statements does
// (partitionChunks).
const warmChunk = 92

// warmCatalogs plans, on c, a statement on every partition of
// cloudtrail_events without running it, and returns how many it planned:
// the statement reads what a lookup reads and filters on every attribute,
// so that the session reads the statistics of those columns and
// expressions too. A partition dropped meanwhile ends its message's
// statements there: the next lookup reads the rest.
func warmCatalogs(ctx context.Context, c *pgx.Conn) (int, error) {
	rows, err := c.Query(ctx, `
SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'cloudtrail_events'::regclass AND c.relkind = 'r'`, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return 0, fmt.Errorf("postgres: warm: partitions: %w", classify(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("postgres: warm: partitions: %w", classify(err))
	}
	conds, err := warmConds()
	if err != nil {
		return 0, err
	}
	planned := 0
	for len(names) > 0 {
		n := min(warmChunk, len(names))
		var sql strings.Builder
		for _, name := range names[:n] {
			// The simple protocol: one message, one transaction, nothing
			// left prepared.
			sql.WriteString("EXPLAIN " + lookupColumns + "\nFROM " + name + "\nWHERE " + conds +
				"\nORDER BY event_time DESC, event_id DESC LIMIT 1;\n")
		}
		err := c.PgConn().Exec(ctx, sql.String()).Close()
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "42P01":
		case err != nil:
			return planned, fmt.Errorf("postgres: warm: %w", classify(err))
		default:
			planned += n
		}
		names = names[n:]
	}
	return planned, nil
}

// Warm returns once the pool holds the connections Config.WarmConns asked
// for, each having read the partitions' catalog entries: a server calls it
// before it takes requests. The pool opens them in the background from the
// start; Warm waits for those, and opens here the ones it does not open.
func (r *Reader) Warm(ctx context.Context) error {
	var held []*pgxpool.Conn
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	t0 := time.Now()
	for {
		st := r.pool.Stat()
		switch {
		case int(st.TotalConns()) >= r.warmConns && st.ConstructingConns() == 0:
			return nil
		case st.ConstructingConns() > 0 || time.Since(t0) < warmGrace:
			select {
			case <-ctx.Done():
				return fmt.Errorf("postgres: warm: %w", ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		default:
			// None is opening: open one (or take an idle one, held so
			// that the next is opened), and learn why if it fails.
			c, err := r.pool.Acquire(ctx)
			if err != nil {
				return fmt.Errorf("postgres: warm: %w", classify(err))
			}
			held = append(held, c)
		}
	}
}

// warmGrace is how long Warm leaves the pool to start opening its
// connections in the background before it opens one itself.
const warmGrace = 200 * time.Millisecond

// warmConds are the conditions of a lookup of every attribute, their
// values written in (an empty name, ReadOnly true).
func warmConds() (string, error) {
	q := LookupQuery{}
	for _, key := range LookupAttributes {
		v := ""
		if key == AttrReadOnly {
			v = "true"
		}
		q.Attributes = append(q.Attributes, LookupAttribute{Key: key, Value: v})
	}
	conds, err := lookupConds(q, func(v any) string {
		if s, ok := v.(string); ok {
			return "'" + strings.ReplaceAll(s, "'", "''") + "'"
		}
		return fmt.Sprint(v)
	})
	return strings.Join(conds, "\n  AND "), err
}
