package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/term"

	"github.com/pgtrail/pgtrail/backfill"
	"github.com/pgtrail/pgtrail/worker"
)

const backfillUsage = `usage: pgtrail backfill -bucket B [-prefix P] -from DATE [-to DATE] [-accounts A,…] [-regions R,…] [-dry-run] [-enqueue] [-digests]

Loads the CloudTrail log files of the days from -from to -to (UTC,
YYYY-MM-DD, inclusive; -to defaults to today) through the same path as run.
Objects already stored are skipped, so a backfill may run beside run, and be
run again to resume. -dry-run only counts; -enqueue sends one notification
per object to SQS_QUEUE_URL for the workers to load. -digests also checks
the digest files of the range, once the log files are loaded
(docs/integrity.md).

`

// cmdBackfill parses its flags, calls backfill.Run and prints the summary.
func cmdBackfill(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() { fmt.Fprint(a.stderr, backfillUsage); fs.PrintDefaults() }
	bucket := fs.String("bucket", "", "the trail's bucket")
	prefix := fs.String("prefix", "", "the trail's S3 key prefix, if any (the part before AWSLogs/)")
	from := fs.String("from", "", "first day, YYYY-MM-DD (UTC)")
	to := fs.String("to", "", "last day, YYYY-MM-DD (UTC); default today")
	accounts := fs.String("accounts", "", "comma-separated account ids to keep; default all")
	regions := fs.String("regions", "", "comma-separated regions to keep; default all")
	dry := fs.Bool("dry-run", false, "list and count, read nothing")
	enqueue := fs.Bool("enqueue", false, "send one notification per object to SQS_QUEUE_URL instead of reading it")
	digests := fs.Bool("digests", false, "also check the digest files in range (CloudTrail-Digest/), after the log files")
	lists := fs.Int("list-concurrency", 8, "day listings in progress at once")
	rps := fs.Float64("s3-rate", 200, "S3 requests per second at most (0: no cap)")
	every := fs.Duration("progress-every", 10*time.Second, "interval of the progress log lines when not on a terminal")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := backfill.Config{Bucket: *bucket, Prefix: *prefix, DryRun: *dry, ListConcurrency: *lists,
		ObjectConcurrency: a.cfg.ObjectConcurrency, Accounts: split(*accounts), Regions: split(*regions), Digests: *digests}
	if *digests && !a.cfg.Integrity {
		fmt.Fprintln(a.stderr, "pgtrail: backfill: -digests needs PGTRAIL_INTEGRITY=true")
		return exitError(2)
	}
	var err error
	if cfg.From, err = time.Parse(time.DateOnly, *from); err != nil || *bucket == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	cfg.To = time.Now().UTC()
	if *to != "" {
		if cfg.To, err = time.Parse(time.DateOnly, *to); err != nil {
			fs.Usage()
			return exitError(2)
		}
	}
	if *enqueue && !*dry {
		if a.cfg.QueueURL == "" {
			fmt.Fprintln(a.stderr, "pgtrail: config: SQS_QUEUE_URL: required by backfill -enqueue")
			return exitError(2)
		}
		cfg.QueueURL = a.cfg.QueueURL
	}

	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(a.cfg.httpClient()))
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	s3Client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = a.cfg.S3ForcePathStyle
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	}, backfill.S3Options(*rps))
	pg, err := openMigrated(ctx, a)
	if err != nil {
		return err
	}
	defer pg.Close()
	deps := backfill.Deps{S3: s3Client, Ledger: pg}
	if cfg.QueueURL != "" {
		deps.Queue = sqs.NewFromConfig(awsCfg)
	} else if !cfg.DryRun {
		proc := worker.NewProcessor(a.cfg.worker(), s3Client, pg, pg, nil, a.log)
		verifier, err := a.cfg.digestVerifier(awsCfg, s3Client, pg, nil, a.log)
		if err != nil {
			return err
		}
		proc.SetDigestVerifier(verifier)
		deps.Processor = proc
	}

	finish := func() {}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Progress, finish = backfill.TerminalProgress(a.stderr)
	} else {
		cfg.Progress, cfg.ProgressEvery = backfill.LogProgress(a.log), *every
	}
	sum, err := backfill.Run(ctx, cfg, deps)
	finish()
	printBackfill(a, cfg, sum)
	if err != nil {
		return err
	}
	if len(sum.Failures) > 0 {
		return exitError(1)
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func printBackfill(a *app, cfg backfill.Config, s backfill.Summary) {
	w := a.stdout
	if cfg.DryRun {
		fmt.Fprintf(w, "%-14s %-16s %10s %12s %10s\n", "ACCOUNT", "REGION", "OBJECTS", "BYTES", "STORED")
		for _, c := range s.PerRegion {
			fmt.Fprintf(w, "%-14s %-16s %10d %12d %10d\n", c.Account, c.Region, c.Objects, c.Bytes, c.Stored)
		}
	}
	fmt.Fprintf(w, "days: %d listed in %d list calls\nobjects: %d in range (%d bytes), %d already stored, ",
		s.DaysListed, s.ListCalls, s.Listed, s.ListedBytes, s.Stored)
	switch {
	case cfg.DryRun:
		fmt.Fprintf(w, "%d to load\n", s.Listed-s.Stored)
	case cfg.QueueURL != "":
		fmt.Fprintf(w, "%d enqueued, %d failed\n", s.Done, s.Failed)
	default:
		fmt.Fprintf(w, "%d loaded, %d failed\nevents: %d read, %d inserted, %d duplicates skipped\nrecords rejected: %d\n",
			s.Done, s.Failed, s.Events, s.Inserted, s.Duplicates, s.Rejects)
	}
	fmt.Fprintf(w, "elapsed: %s\n", s.Elapsed.Round(time.Millisecond))
	for _, f := range s.Failures {
		fmt.Fprintln(a.stderr, "pgtrail: failed:", f)
	}
}
