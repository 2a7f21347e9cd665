package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// retentionInterval is how often run applies PGTRAIL_RETENTION_DAYS.
const retentionInterval = time.Hour

// activityCompaction is how often run merges the activity rows that
// writes add (a row an hour of events a write, a few a second under load)
// into one an hour.
const activityCompaction = 5 * time.Minute

// lookupSummaries is how often run summarizes the closed days that have no
// lookup summary (sink.Postgres.SummarizeLookupDays): the day that closed,
// and a day whose summary an event stored late deleted.
const lookupSummaries = 5 * time.Minute

// cmdRetention drops the day partitions older than PGTRAIL_RETENTION_DAYS
// (or -days) and prints each one, then deletes the settled alerts of the
// events older than that; with -dry-run it only prints what would go.
func cmdRetention(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("retention", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	dryRun := fs.Bool("dry-run", false, "print the partitions that would be dropped, and drop nothing")
	days := fs.Int("days", a.cfg.RetentionDays, "days of events to keep (default PGTRAIL_RETENTION_DAYS)")
	fs.Usage = func() {
		fmt.Fprintln(a.stderr, "usage: pgtrail retention [-dry-run] [-days N]\n\nDrops the day partitions of cloudtrail_events that lie wholly more than N days back\n(midnight UTC). Rows are never deleted one by one. Then deletes the alerts of those\nevents that were delivered (or throttled, or too old to send), with their summaries.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError(2)
	}
	switch {
	case *days == 0:
		fmt.Fprintln(a.stderr, "pgtrail: retention: PGTRAIL_RETENTION_DAYS is 0 (keep everything); set it or pass -days N")
		return exitError(2)
	case *days < 0 || *days > maxRetentionDays:
		fmt.Fprintf(a.stderr, "pgtrail: retention: -days must be 1 to %d, got %d\n", maxRetentionDays, *days)
		return exitError(2)
	}

	pg, err := openSink(ctx, a)
	if err != nil {
		return err
	}
	defer pg.Close()
	cutoff := sink.RetentionCutoff(time.Now(), *days)
	parts, err := pg.DropPartitionsBefore(ctx, cutoff, *dryRun)
	if errors.Is(err, sink.ErrRetentionBusy) {
		fmt.Fprintln(a.stderr, "pgtrail:", err, "; try again later")
		return exitError(1)
	}
	if err != nil {
		return err
	}

	verb := "dropped"
	if *dryRun {
		verb = "would drop"
	}
	fmt.Fprintf(a.stdout, "keeping %d days: partitions before %s (UTC) go\n", *days, cutoff.Format(time.DateOnly))
	for _, p := range parts {
		rows := "rows unknown"
		if p.ApproxRows >= 0 {
			rows = fmt.Sprintf("~%d rows", p.ApproxRows)
		}
		fmt.Fprintf(a.stdout, "%s %s  [%s, %s)  %s\n", verb, p.Name,
			p.Start.Format(time.DateTime), p.End.Format(time.DateTime), rows)
	}
	switch {
	case len(parts) == 0:
		fmt.Fprintln(a.stdout, "nothing to drop")
	case *dryRun:
		fmt.Fprintf(a.stdout, "%d partitions would be dropped (dry run: nothing was)\n", len(parts))
	default:
		fmt.Fprintf(a.stdout, "%d partitions dropped\n", len(parts))
	}
	d, err := pg.DeleteAlertsBefore(ctx, cutoff, *dryRun)
	if err != nil {
		return err
	}
	verb = "deleted"
	if *dryRun {
		verb = "would delete"
	}
	fmt.Fprintf(a.stdout, "%s %d settled alerts, %d summaries, %d delivery records\n", verb, d.Alerts, d.Summaries, d.Deliveries)
	return nil
}
