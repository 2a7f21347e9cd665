package main

import (
	"github.com/pgtrail/pgtrail/backfill"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// The worker and backfill declare what they need from storage and from
// each other; sink.Postgres and worker.Processor are what this command
// gives them. sink cannot import worker, so the check is here.
var (
	_ worker.Sink        = (*sink.Postgres)(nil)
	_ worker.Ledger      = (*sink.Postgres)(nil)
	_ backfill.Ledger    = (*sink.Postgres)(nil)
	_ backfill.Processor = (*worker.Processor)(nil)
)
