package sink_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// TestLockBudgetArithmetic: a year of daily partitions with 12 indexes
// needs more than PostgreSQL's default lock table, and the advice names the
// setting and a value that is enough; a few weeks fit.
func TestLockBudgetArithmetic(t *testing.T) {
	t.Parallel()
	year := sink.LockBudget{MaxLocksPerTransaction: 64, MaxConnections: 100, Partitions: 365, Indexes: 12}
	if got := year.PerQuery(); got != 366*13 {
		t.Errorf("PerQuery = %d, want %d", got, 366*13)
	}
	if got := year.Table(); got != 6400 {
		t.Errorf("Table = %d, want 6400", got)
	}
	rec := year.Recommended()
	if rec%64 != 0 || rec*100 < sink.LockHeadroomQueries*year.PerQuery() || (rec-64)*100 >= sink.LockHeadroomQueries*year.PerQuery() {
		t.Errorf("Recommended = %d: not the smallest multiple of 64 that holds %d queries of %d locks", rec, sink.LockHeadroomQueries, year.PerQuery())
	}
	w := year.Warning()
	for _, want := range []string{"max_locks_per_transaction = 512", "365 partitions", "4758 locks", "holds 6400"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q lacks %q", w, want)
		}
	}
	fixed := year
	fixed.MaxLocksPerTransaction = rec
	if fixed.Short() || fixed.Warning() != "" {
		t.Errorf("with the recommended %d: still short: %s", rec, fixed.Warning())
	}
	prepared := year
	prepared.MaxPreparedTransactions = 100
	if got := prepared.Recommended(); got != 256 {
		t.Errorf("with 100 prepared transactions: Recommended = %d, want 256", got)
	}
	weeks := sink.LockBudget{MaxLocksPerTransaction: 64, MaxConnections: 100, Partitions: 30, Indexes: 12}
	if weeks.Short() {
		t.Errorf("30 partitions in the default lock table: %s", weeks.Warning())
	}
	if (sink.LockBudget{}).Short() {
		t.Error("a database without cloudtrail_events is short of locks")
	}
}

// TestReadStatusLockBudget: pgtrail status reads the lock settings and
// counts cloudtrail_events' partitions and the indexes each one has.
func TestReadStatusLockBudget(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	ctx := context.Background()
	day := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	if _, err := write(ctx, pg, []*testObject{buffered("a", event("e1", day, "a"), event("e2", day.AddDate(0, 0, 1), "a"),
		event("e3", day.AddDate(0, 0, 3), "a"))}); err != nil {
		t.Fatal(err)
	}
	st, err := sink.ReadStatus(ctx, pg.Pool().Config().ConnString(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b := st.Locks
	want := sink.LockBudget{
		MaxLocksPerTransaction:  count(t, pg, `SELECT current_setting('max_locks_per_transaction')::int`),
		MaxConnections:          count(t, pg, `SELECT current_setting('max_connections')::int`),
		MaxPreparedTransactions: count(t, pg, `SELECT current_setting('max_prepared_transactions')::int`),
		Partitions:              3,
		Indexes:                 count(t, pg, `SELECT count(*) FROM pg_index WHERE indrelid = 'cloudtrail_events_20240502'::regclass`),
	}
	if b != want || b.Indexes < 10 {
		t.Errorf("lock budget %+v, want %+v", b, want)
	}
}
