package sink

// UniqueViolation, ProbeEvents, ProbeArgs and UpsertLedger are exported for the
// tests of what Citus needs of the write path (citus_test.go).
var (
	UniqueViolation = uniqueViolation
	ProbeEvents     = probeEvents
	UpsertLedger    = upsertLedger
	ProbeArgs       = probeArgs
)
