package sink

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// unixDay is the UTC day of t, counted from 1970-01-01: the partition that
// holds t. Times before 1970 round down, to the day they fall on.
func unixDay(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// missingPartition recognizes an insert that found no partition for a row:
// the partition was dropped (by retention, perhaps in another process) after
// this process noted that it exists. It forgets the partitions it knows, so
// that the next attempt, which the worker makes as for any error not marked
// permanent, creates them again. It returns err as it is.
func (p *Postgres) missingPartition(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && noPartition(pgErr) {
		p.ForgetPartitions()
	}
	return err
}
