package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// cmdIngest reads local files through the same path as the daemon. A file
// that fails is named and skipped; the command then exits with status 1.
func cmdIngest(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	every := fs.Duration("progress-every", 10*time.Second, "interval of the progress log lines when stderr is not a terminal (0: none)")
	fs.Usage = func() {
		fmt.Fprintln(a.stderr, "usage: pgtrail ingest PATH...\n\nReads CloudTrail files (.json or .json.gz, gzip detected by content) and folders, recursively,\ninto DATABASE_URL, and prints what it stored. A file that cannot be read is named and\nskipped; the exit status is then 1.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError(exitUsage)
	}
	files, walkErr := worker.LogFiles(fs.Args())
	if walkErr != nil {
		fmt.Fprintln(a.stderr, "pgtrail:", walkErr)
	}

	pg, err := openMigrated(ctx, a)
	if err != nil {
		return err
	}
	defer pg.Close()
	proc := worker.NewProcessor(a.cfg.worker(), nil, pg, nil, nil, a.log)

	prog := &ingestProgress{start: time.Now(), files: len(files)}
	sizes := make(map[string]int64, len(files))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			sizes[f] = fi.Size()
			prog.bytes += fi.Size()
		}
	}
	stopProgress := prog.show(ctx, a.stderr, a.log, *every)
	defer stopProgress()

	// Files are read concurrently, like a queue's objects, so that small
	// ones share transactions; each is still committed whole or not at all.
	// This fan-out and its totals belong in worker, beside Processor.File
	// (one call from here, as backfill will need the same); they move there
	// with worker's re-layout.
	var (
		mu     sync.Mutex
		total  sink.WriteResult
		failed int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.cfg.ObjectConcurrency)
	for _, f := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			res, err := proc.File(gctx, f)
			prog.add(sizes[f], res, err != nil && ctx.Err() == nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				failed++
				fmt.Fprintf(a.stderr, "pgtrail: %s: %v\n", f, err)
				return nil
			}
			a.log.Debug("file ingested", zap.String("file", f), zap.Int("inserted", res.Inserted))
			total.Events += res.Events
			total.Inserted += res.Inserted
			total.Duplicates += res.Duplicates
			total.Rejected += res.Rejected
			return nil
		})
	}
	err = g.Wait()
	stopProgress()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "files: %d read, %d failed\nevents: %d read, %d inserted, %d duplicates skipped\nrecords rejected: %d\n",
		len(files)-failed, failed, total.Events, total.Inserted, total.Duplicates, total.Rejected)
	if failed > 0 || walkErr != nil {
		return exitError(1)
	}
	return nil
}
