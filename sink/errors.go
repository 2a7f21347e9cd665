package sink

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtrail/pgtrail/internal/retry"
)

// Errors are classified here, once, where pgtrail meets PostgreSQL. The
// worker retries any error that is not marked retry.Permanent, and leaves
// a message whose object failed permanently for the dead-letter queue.
//
// What PostgreSQL refuses for the values it was given (see refused) is not
// an error of the write as a whole: Write stores the rows it refuses in
// cloudtrail_rejects, with its reason, and everything else (refuse.go). It
// is marked Permanent only where no row is to blame: a statement other
// than the insert of the events, such as the ledger row of an object whose
// name PostgreSQL cannot hold. Every other error (a lost connection, a
// deadlock, a partition dropped meanwhile, a missing grant) is left
// unmarked, to be retried.

// refused reports whether PostgreSQL refused a statement because of the
// values in it, and will refuse them again however often it is retried:
//
//   - class 22, data exception: a value its type cannot hold (a number
//     beyond numeric's range, 22003; a NUL or a byte that is not UTF-8 in
//     text, 22021; an escape jsonb refuses, 22P05);
//   - class 54, program limit exceeded: a value too big for an index entry
//     (54000) or nested too deeply (54001);
//   - a NOT NULL or CHECK constraint (23502, 23514), which pgtrail's own
//     schema never trips but an operator may add. The 23514 of a row for
//     which no partition exists is not one: the partition was dropped
//     meanwhile, and the write is retried (see missingPartition).
func refused(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch code := pgErr.Code; {
	case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "54"), code == "23502":
		return true
	case code == "23514":
		return !noPartition(pgErr)
	}
	return false
}

// noPartition reports whether pgErr is an insert that found no partition
// for its row.
func noPartition(pgErr *pgconn.PgError) bool {
	return pgErr.Code == "23514" && strings.HasPrefix(pgErr.Message, "no partition of relation")
}

// classify marks err as permanent if PostgreSQL refused the values it was
// given; any other error is returned as it is, to be retried.
func classify(err error) error {
	if refused(err) {
		return retry.Permanent(err)
	}
	return err
}

// uniqueMessage begins PostgreSQL's message for a unique violation.
const uniqueMessage = "duplicate key value violates unique constraint"

// uniqueViolation reports whether err is a unique violation: SQLSTATE
// 23505, or the condition itself, by its message, whatever the code. A
// Citus coordinator relays a worker's unique violation during COPY as an
// internal error, XX000, with the worker's message (and a shard's
// constraint, such as cloudtrail_events_pkey_102008): by the code alone,
// a batch that met a stored event would fail, again at every delivery,
// instead of being written again without it. The message is matched in
// English, the server's default lc_messages (docs/scaling.md).
func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	if pgErr.Code == "23505" {
		return true
	}
	return strings.Contains(pgErr.Message, uniqueMessage)
}
