package sink

import (
	"context"
	"fmt"
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
