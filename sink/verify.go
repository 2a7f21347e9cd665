package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// VerifyFilter selects the verdicts pgtrail verify reports: digests whose
// end time is from From to To, and the log files they list; Accounts and
// Regions, when set, keep only theirs.
type VerifyFilter struct {
	From, To          time.Time
	Accounts, Regions []string
	// Grace is how long after its digest's end a listed log file may still
	// be on its way: missing only after that, pending before.
	Grace time.Duration
}

// VerifyReport is what the stored verdicts say of a period.
type VerifyReport struct {
	// Digests are the digests checked, oldest first.
	Digests []DigestVerdict `json:"digests"`
	// Files are the log files that did not verify (every verdict but
	// verified), by digest end.
	Files []FileVerdict `json:"files"`
	// FileCounts counts all the listed log files by verdict, with
	// listed_not_ingested split into missing and pending.
	FileCounts map[string]int64 `json:"file_counts"`
	// Uncovered counts log files ingested in the period that no digest has
	// listed or found unlisted yet.
	Uncovered int64 `json:"uncovered"`
}

// DigestVerdict is one digest's stored verdict.
type DigestVerdict struct {
	Bucket    string    `json:"bucket"`
	Key       string    `json:"key"`
	AccountID string    `json:"account_id"`
	Region    string    `json:"region"`
	Trail     string    `json:"trail"`
	Chain     string    `json:"chain"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Valid     bool      `json:"valid"`
	Reason    string    `json:"reason,omitempty"`
	GapBefore bool      `json:"gap_before"`
	// GapSince is the end of the chain's digest before the gap, when
	// pgtrail has one: no log files were delivered from GapSince to Start.
	GapSince *time.Time `json:"gap_since,omitempty"`
}

// FileVerdict is one log file's stored verdict.
type FileVerdict struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	Verdict   string `json:"verdict"`
	DigestKey string `json:"digest_key,omitempty"`
	// Missing is set for listed_not_ingested past the grace period.
	Missing   bool      `json:"missing,omitempty"`
	DigestEnd time.Time `json:"digest_end"`
}

// Failures counts what makes the report fail: invalid digests, and log
// files altered, extended, unlisted or missing.
func (r *VerifyReport) Failures() int64 {
	var n int64
	for _, d := range r.Digests {
		if !d.Valid {
			n++
		}
	}
	return n + r.FileCounts[FileHashMismatch] + r.FileCounts[FileTrailingData] + r.FileCounts[FileNotListed] + r.FileCounts["missing"]
}

// verifyWhere is the filter of the digests and files, on columns
// account_id, region and the time column %s: $1 from, $2 to, $3 accounts,
// $4 regions (empty for all).
const verifyWhere = `%[1]s >= $1 AND %[1]s <= $2
    AND (cardinality($3::text[]) = 0 OR account_id = ANY($3))
    AND (cardinality($4::text[]) = 0 OR region = ANY($4))`

// ReadVerify reads the stored verdicts that f selects, in a read-only
// session of its own.
func ReadVerify(ctx context.Context, dsn string, f VerifyFilter, timeout time.Duration) (*VerifyReport, error) {
	conn, err := connectReadOnly(ctx, dsn, "pgtrail verify", timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	args := []any{f.From, f.To, nonNil(f.Accounts), nonNil(f.Regions)}
	r := &VerifyReport{FileCounts: map[string]int64{}}

	rows, err := conn.Query(ctx, `SELECT d.s3_bucket, d.s3_key, d.account_id, d.region, d.trail, d.chain,
            coalesce(d.start_time, d.end_time), d.end_time, d.verdict = 'valid', coalesce(d.reason, ''), d.gap_before,
            (SELECT max(p.end_time) FROM cloudtrail_digests p
             WHERE d.gap_before AND p.account_id = d.account_id AND p.region = d.region AND p.trail = d.trail
               AND p.chain = d.chain AND p.org_id = d.org_id AND p.end_time <= coalesce(d.start_time, d.end_time))
        FROM cloudtrail_digests d WHERE `+fmt.Sprintf(verifyWhere, "d.end_time")+`
        ORDER BY d.end_time, d.s3_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: digests: %w", err)
	}
	r.Digests, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (DigestVerdict, error) {
		var d DigestVerdict
		err := row.Scan(&d.Bucket, &d.Key, &d.AccountID, &d.Region, &d.Trail, &d.Chain, &d.Start, &d.End,
			&d.Valid, &d.Reason, &d.GapBefore, &d.GapSince)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: digests: %w", err)
	}

	rows, err = conn.Query(ctx, `SELECT s3_bucket, s3_key, verdict, coalesce(digest_key, ''),
            verdict = 'listed_not_ingested' AND digest_end < now() - $5::interval, digest_end
        FROM cloudtrail_digest_files WHERE `+fmt.Sprintf(verifyWhere, "digest_end")+`
        ORDER BY digest_end, s3_key`, append(args, f.Grace)...)
	if err != nil {
		return nil, fmt.Errorf("postgres: log files: %w", err)
	}
	var fv FileVerdict
	_, err = pgx.ForEachRow(rows, []any{&fv.Bucket, &fv.Key, &fv.Verdict, &fv.DigestKey, &fv.Missing, &fv.DigestEnd}, func() error {
		switch {
		case fv.Missing:
			r.FileCounts["missing"]++
		case fv.Verdict == FileListedNotIngested:
			r.FileCounts["pending"]++
		default:
			r.FileCounts[fv.Verdict]++
		}
		if fv.Verdict != FileVerified {
			r.Files = append(r.Files, fv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: log files: %w", err)
	}

	// Ledger rows carry no account or region: the filters apply to the
	// key's folders.
	err = conn.QueryRow(ctx, `SELECT count(*) FROM cloudtrail_objects o
        WHERE o.processed_at >= $1 AND o.processed_at <= $2 AND o.s3_key LIKE '%/CloudTrail/%'
          AND (cardinality($3::text[]) = 0 OR pg_catalog.substring(o.s3_key, '([0-9]{12})/CloudTrail/') = ANY($3))
          AND (cardinality($4::text[]) = 0 OR pg_catalog.substring(o.s3_key, '/CloudTrail/([a-z0-9-]+)/') = ANY($4))
          AND NOT EXISTS (SELECT 1 FROM cloudtrail_digest_files f WHERE f.s3_bucket = o.s3_bucket AND f.s3_key = o.s3_key)`,
		args...).Scan(&r.Uncovered)
	if err != nil {
		return nil, fmt.Errorf("postgres: uncovered log files: %w", err)
	}
	return r, nil
}

// nonNil is s, or an empty slice: a nil slice would be a NULL array.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
