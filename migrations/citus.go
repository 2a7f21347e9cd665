package migrations

import _ "embed"

// CitusDistribute is the SQL that distributes pgtrail's tables over a Citus
// cluster (citus/distribute.sql). It is not a numbered migration: pgtrail
// migrate runs it when asked to (PGTRAIL_CITUS=true), after them.
//
//go:embed citus/distribute.sql
var CitusDistribute string
