package sink

import (
	"errors"
	"strings"
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
// that the next attempt creates them again, and marks the error worth
// retrying. Other errors are returned as they are.
func (p *Postgres) missingPartition(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" || !strings.HasPrefix(pgErr.Message, "no partition of relation") {
		return err
	}
	p.ForgetPartitions()
	return &transientError{err}
}
