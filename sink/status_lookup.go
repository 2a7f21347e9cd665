package sink

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LookupSummaryStatus counts the closed day partitions (ended at or before
// yesterday, UTC) and those of them that have a lookup summary
// (migrations/0015): a lookup reads every day without one.
type LookupSummaryStatus struct {
	Closed, Summarized int64
}

// queryLookupSummaries reads the summaries' coverage, if the schema has
// them.
func (st *Status) queryLookupSummaries(ctx context.Context, conn *pgx.Conn) error {
	if st.Schema < 15 {
		return nil
	}
	s := &LookupSummaryStatus{}
	if err := conn.QueryRow(ctx, `
SELECT count(*), count(s.relid)
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL pg_get_expr(c.relpartbound, 0) b
LEFT JOIN pgtrail_lookup_summaries s ON s.relid = c.oid
WHERE i.inhparent = 'cloudtrail_events'::regclass AND c.relkind = 'r'
  AND `+boundHi+` <= ((now() AT TIME ZONE 'UTC')::date - 1)::timestamp AT TIME ZONE 'UTC'`).Scan(&s.Closed, &s.Summarized); err != nil {
		return fmt.Errorf("postgres: lookup summaries: %w", err)
	}
	st.Lookup = s
	return nil
}
