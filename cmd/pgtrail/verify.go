package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

func init() { commands["verify"] = cmdVerify }

// cmdVerify reports, from the verdicts pgtrail stored as digests arrived,
// what aws cloudtrail validate-logs would say of a period: each digest
// valid or invalid, each log file valid, invalid or not found, and the
// gaps in the chains. It exits 1 when anything failed. It only reads.
func cmdVerify(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	from := fs.String("from", "", "oldest digest end time: RFC 3339, YYYY-MM-DD (UTC), or a duration back from now (24h); required")
	to := fs.String("to", "", "newest digest end time, same forms; default: now")
	accounts := fs.String("accounts", "", "comma-separated account ids to report on; default: all")
	regions := fs.String("regions", "", "comma-separated regions to report on; default: all")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	timeout := fs.Duration("timeout", time.Minute, "time allowed to each query")
	fs.Usage = func() {
		fmt.Fprint(a.stderr, "usage: pgtrail verify -from T [-to T] [-accounts A,B] [-regions R,S] [-json]\n\n"+
			"Reports the integrity of the log files from CloudTrail's digest files, as aws cloudtrail\n"+
			"validate-logs does, from the verdicts stored as the digests arrived (docs/integrity.md).\n"+
			"Exits 1 if a digest or a log file failed, or a listed log file is missing.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	now := time.Now().UTC()
	var start, end time.Time
	err := errors.New("-from is required")
	if *from != "" {
		start, err = parseWhen(*from, now, time.Time{})
	}
	end, err2 := parseWhen(*to, now, now)
	if _, err := time.Parse(time.DateOnly, *to); err == nil {
		end = end.Add(24*time.Hour - time.Nanosecond) // the whole day
	}
	if err := errors.Join(err, err2); fs.NArg() > 0 || err != nil {
		if err != nil {
			fmt.Fprintln(a.stderr, "pgtrail: verify:", err)
		}
		fs.Usage()
		return exitError(exitUsage)
	}
	f := sink.VerifyFilter{From: start, To: end, Accounts: split(*accounts), Regions: split(*regions), Grace: a.cfg.IntegrityGrace}
	r, err := sink.ReadVerify(ctx, a.cfg.DatabaseURL, f, *timeout)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printVerify(a.stdout, f, r)
	}
	if r.Failures() > 0 {
		return exitError(1)
	}
	return nil
}

// fileWords are the log file verdicts in validate-logs' words.
var fileWords = map[string]string{
	sink.FileVerified:          "valid",
	sink.FileHashMismatch:      "INVALID: hash value doesn't match",
	sink.FileTrailingData:      "INVALID: unexpected data after end of compressed stream",
	sink.FileNotListed:         "INVALID: not listed in any digest",
	sink.FileListedNotIngested: "INVALID: not found",
	sink.FileNotHashed:         "not checked: ingested before pgtrail hashed log files",
}

// printVerify writes the report as validate-logs writes its own: a line
// per digest or log file that is not valid, the gaps, then the totals.
func printVerify(w io.Writer, f sink.VerifyFilter, r *sink.VerifyReport) {
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	fmt.Fprintf(w, "Validating log files between %s and %s\n\n", rfc(f.From), rfc(f.To))
	valid := 0
	for _, d := range r.Digests {
		if d.Valid {
			valid++
		} else {
			fmt.Fprintf(w, "Digest file\ts3://%s/%s\tINVALID: %s\n", d.Bucket, d.Key, d.Reason)
		}
		if d.GapBefore && d.GapSince != nil && d.GapSince.Before(d.Start) {
			fmt.Fprintf(w, "No log files were delivered by CloudTrail between %s and %s (%s, %s, trail %s)\n",
				rfc(*d.GapSince), rfc(d.Start), d.AccountID, d.Region, d.Trail)
		}
	}
	for _, fv := range r.Files {
		words := fileWords[fv.Verdict]
		if fv.Verdict == sink.FileListedNotIngested && !fv.Missing {
			words = "pending: listed, not ingested yet"
		}
		fmt.Fprintf(w, "Log file\ts3://%s/%s\t%s\n", fv.Bucket, fv.Key, words)
	}
	fmt.Fprintf(w, "\nResults found for %s to %s:\n\n", rfc(f.From), rfc(f.To))
	n := len(r.Digests)
	fmt.Fprintf(w, "%d/%d digest files valid", valid, n)
	if n > valid {
		fmt.Fprintf(w, ", %d/%d digest files INVALID", n-valid, n)
	}
	fmt.Fprintln(w)
	var total int64
	for _, c := range r.FileCounts {
		total += c
	}
	fmt.Fprintf(w, "%d/%d log files valid", r.FileCounts[sink.FileVerified], total)
	for _, c := range []struct{ key, words string }{
		{sink.FileHashMismatch, "INVALID (hash value doesn't match)"},
		{sink.FileTrailingData, "INVALID (unexpected data after end of compressed stream)"},
		{sink.FileNotListed, "INVALID (not listed in any digest)"},
		{"missing", "not found"},
		{"pending", "not ingested yet"},
		{sink.FileNotHashed, "not checked"},
	} {
		if n := r.FileCounts[c.key]; n > 0 {
			fmt.Fprintf(w, ", %d/%d log files %s", n, total, c.words)
		}
	}
	fmt.Fprintln(w)
	if r.Uncovered > 0 {
		fmt.Fprintf(w, "%d ingested log files not yet covered by a digest\n", r.Uncovered)
	}
}
