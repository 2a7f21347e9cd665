// Package faultsuite holds pgtrail's fault suite: tests that run the real
// pgtrail binary as child processes over thousands of generated CloudTrail
// objects while killing it, cutting and restarting its database, taking it
// away for several visibility timeouts, failing S3 and SQS requests through
// a fault-injecting proxy (internal/faults), stopping it mid-object and
// delivering the same notifications to several workers at once, and then
// check that every event is in PostgreSQL exactly once, the queue is
// drained and the dead-letter queue holds only the messages that belong
// there. It also holds the end-to-end security checks: no password in the
// logs, and TLS to PostgreSQL as DATABASE_URL asks.
//
// The package has no code of its own; see docs/reliability.md for how to
// run the short and long profiles and what the figures mean.
package faultsuite
