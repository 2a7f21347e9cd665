package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// IntegrityStatus is what ReadStatus reads of the digest checks.
type IntegrityStatus struct {
	// Digests counts the digests checked in the last day: valid, invalid,
	// and those that start a chain after a gap.
	Valid, Invalid, Gaps int64
	// Files counts the log files checked in the last day, by verdict.
	Files map[string]int64
	// Failing counts every log file whose verdict is a failure, and
	// InvalidDigests every invalid digest, whenever checked.
	Failing, InvalidDigests int64
	// LastChecked is when the latest digest was checked; zero if none.
	LastChecked time.Time
}

// queryIntegrity reads the digest checks, if the schema has them.
func (st *Status) queryIntegrity(ctx context.Context, conn *pgx.Conn) error {
	if st.Schema < 11 {
		return nil
	}
	s := &IntegrityStatus{Files: map[string]int64{}}
	var last *time.Time
	if err := conn.QueryRow(ctx, `SELECT
            count(*) FILTER (WHERE verdict = 'valid' AND checked_at > now() - interval '1 day'),
            count(*) FILTER (WHERE verdict = 'invalid' AND checked_at > now() - interval '1 day'),
            count(*) FILTER (WHERE gap_before AND checked_at > now() - interval '1 day'),
            count(*) FILTER (WHERE verdict = 'invalid'), max(checked_at)
        FROM cloudtrail_digests`).Scan(&s.Valid, &s.Invalid, &s.Gaps, &s.InvalidDigests, &last); err != nil {
		return fmt.Errorf("postgres: integrity: %w", err)
	}
	if last != nil {
		s.LastChecked = *last
	}
	rows, err := conn.Query(ctx, `SELECT verdict, count(*) FILTER (WHERE checked_at > now() - interval '1 day'),
            count(*) FILTER (WHERE `+failedFile+`)
        FROM cloudtrail_digest_files GROUP BY 1`)
	if err != nil {
		return fmt.Errorf("postgres: integrity files: %w", err)
	}
	var verdict string
	var day, failing int64
	if _, err := pgx.ForEachRow(rows, []any{&verdict, &day, &failing}, func() error {
		if day > 0 {
			s.Files[verdict] = day
		}
		s.Failing += failing
		return nil
	}); err != nil {
		return fmt.Errorf("postgres: integrity files: %w", err)
	}
	st.Integrity = s
	return nil
}
