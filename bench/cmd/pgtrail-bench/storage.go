package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/sink"
)

// Storage compares json and jsonb for cloudtrail_events.record: the cost of
// writing (COPY alone, as the COPY limit), the WAL and disk it takes, and
// typical analyst queries over it.
type Storage struct {
	Events   int             `json:"events"`
	Variants []StorageResult `json:"variants"`
}

// StorageResult is one column type.
type StorageResult struct {
	Type       string             `json:"type"`
	EventsPerS float64            `json:"copy_events_per_s"`
	WALBytes   int64              `json:"wal_bytes_per_event"`
	DiskBytes  int64              `json:"disk_bytes_per_event"`
	QueriesMS  map[string]float64 `json:"query_ms"`
}

// storageQueries are typical analyst queries that read the raw record.
var storageQueries = []struct{ name, sql string }{
	{"bucket filter", `SELECT count(*) FROM cloudtrail_events WHERE record->'requestParameters'->>'bucketName' = 'data-00000000'`},
	{"issuer group", `SELECT record->'userIdentity'->'sessionContext'->'sessionIssuer'->>'userName' AS role, count(*)
        FROM cloudtrail_events GROUP BY 1 ORDER BY 2 DESC LIMIT 10`},
	{"tls by source", `SELECT record->'tlsDetails'->>'tlsVersion', count(*) FROM cloudtrail_events
        WHERE event_source = 's3.amazonaws.com' GROUP BY 1`},
	{"one day's records", `SELECT sum(length(record::text)) FROM cloudtrail_events
        WHERE event_time >= '2024-03-02' AND event_time < '2024-03-03'`},
}

func compareStorage(ctx context.Context, o options, set *gen.Set) (*Storage, error) {
	evs, err := normalizeAll(set)
	if err != nil {
		return nil, err
	}
	s := &Storage{Events: len(evs)}
	for _, typ := range []string{"jsonb", "json"} {
		dbURL, conn, done, err := freshDB(ctx, o.server)
		if err != nil {
			return nil, err
		}
		r, err := func() (StorageResult, error) {
			defer done()
			if typ == "json" {
				if _, err := conn.Exec(ctx, `ALTER TABLE cloudtrail_events ALTER COLUMN record TYPE json`); err != nil {
					return StorageResult{}, err
				}
			}
			if err := ensurePartitions(ctx, conn, evs); err != nil {
				return StorageResult{}, err
			}
			r := StorageResult{Type: typ, QueriesMS: map[string]float64{}}
			var lsn0, lsn1 string
			if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn0); err != nil {
				return r, err
			}
			m, err := timeCopy(ctx, dbURL, evs, typ == "jsonb", sink.CopyEventsSQL)
			if err != nil {
				return r, err
			}
			r.EventsPerS = m.EventsPerS
			if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn1); err != nil {
				return r, err
			}
			var wal, disk int64
			if err := conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint`, lsn1, lsn0).Scan(&wal); err != nil {
				return r, err
			}
			if _, err := conn.Exec(ctx, `VACUUM ANALYZE cloudtrail_events`); err != nil {
				return r, err
			}
			if err := conn.QueryRow(ctx, `SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits
                WHERE inhparent = 'cloudtrail_events'::regclass`).Scan(&disk); err != nil {
				return r, err
			}
			r.WALBytes, r.DiskBytes = wal/int64(len(evs)), disk/int64(len(evs))
			for _, q := range storageQueries {
				ms, err := timeQuery(ctx, conn, q.sql)
				if err != nil {
					return r, fmt.Errorf("%s: %w", q.name, err)
				}
				r.QueriesMS[q.name] = ms
			}
			return r, nil
		}()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", typ, err)
		}
		s.Variants = append(s.Variants, r)
	}
	return s, nil
}

// timeQuery runs sql once to warm the cache, then three times, and returns
// the median in milliseconds.
func timeQuery(ctx context.Context, conn *pgx.Conn, sql string) (float64, error) {
	var ts []float64
	for i := range 4 {
		start := time.Now()
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		if i > 0 {
			ts = append(ts, float64(time.Since(start).Microseconds())/1000)
		}
	}
	sort.Float64s(ts)
	return ts[1], nil
}

func (s *Storage) print() {
	fmt.Printf("record column, %d events:\n", s.Events)
	for _, v := range s.Variants {
		fmt.Printf("  %-5s COPY %7.0f ev/s  WAL %5d B/ev  disk %5d B/ev", v.Type, v.EventsPerS, v.WALBytes, v.DiskBytes)
		for _, q := range storageQueries {
			fmt.Printf("  %s %.0f ms", q.name, v.QueriesMS[q.name])
		}
		fmt.Println()
	}
}
