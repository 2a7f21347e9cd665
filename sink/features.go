package sink

import (
	"context"
	"errors"
	"fmt"
)

// schemaFeatures are the parts of the schema that a worker upgraded before
// its database may not find yet, and writes without.
type schemaFeatures struct {
	// hashed: the ledger has the hash columns of migration 0011.
	hashed bool
	// activity: cloudtrail_activity (0014) exists.
	activity bool
	// record is the type of cloudtrail_events.record (jsonb, or json),
	// which the binary COPY must know; "" before the first migration.
	record string
}

// features reports the schemaFeatures of the database. It asks once the
// events table is there, and again after Migrate.
func (p *Postgres) features(ctx context.Context) (schemaFeatures, error) {
	p.mu.Lock()
	known, f := p.featuresKnown, p.schema
	p.mu.Unlock()
	if known {
		return f, nil
	}
	// Operators named in pg_catalog: no operator another role planted in
	// the schema runs in their place.
	err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
        WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('cloudtrail_objects')
          AND attname OPERATOR(pg_catalog.=) 'content_sha256' AND NOT attisdropped),
        pg_catalog.to_regclass('cloudtrail_activity') IS NOT NULL,
        coalesce((SELECT atttypid::pg_catalog.regtype::text FROM pg_catalog.pg_attribute
            WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('cloudtrail_events')
              AND attname OPERATOR(pg_catalog.=) 'record' AND NOT attisdropped), '')`).Scan(&f.hashed, &f.activity, &f.record)
	if err != nil {
		return f, fmt.Errorf("postgres: schema features: %w", classify(err))
	}
	if f.record != "" {
		p.mu.Lock()
		p.featuresKnown, p.schema = true, f
		p.mu.Unlock()
	}
	return f, nil
}

// recordJSONB reports whether cloudtrail_events.record is jsonb (rather
// than json).
func (p *Postgres) recordJSONB(ctx context.Context) (bool, error) {
	f, err := p.features(ctx)
	if err != nil {
		return false, err
	}
	if f.record == "" {
		return false, errors.New("postgres: record column type: cloudtrail_events.record not found (run pgtrail migrate)")
	}
	return f.record == "jsonb", nil
}

// forgetFeatures makes features ask again.
func (p *Postgres) forgetFeatures() {
	p.mu.Lock()
	p.featuresKnown = false
	p.mu.Unlock()
}
