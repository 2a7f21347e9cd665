package main

import (
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// The worker declares what it needs from storage; sink.Postgres is what
// this command gives it. sink cannot import worker, so the check is here.
var (
	_ worker.Sink   = (*sink.Postgres)(nil)
	_ worker.Ledger = (*sink.Postgres)(nil)
)
