package main

import (
	"context"
	"flag"
	"fmt"
	"sync"

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
	fs.Usage = func() {
		fmt.Fprintln(a.stderr, "usage: pgtrail ingest PATH...\n\nReads CloudTrail files (.json or .json.gz, gzip detected by content) and folders, recursively.")
	}
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError(2)
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
	if err := g.Wait(); err != nil {
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
