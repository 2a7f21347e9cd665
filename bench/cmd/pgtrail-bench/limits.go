package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// decodeLimit decompresses and decodes every object on every CPU, first
// alone and then with normalize, and keeps the better of two runs of each.
func decodeLimit(set *gen.Set) []Measurement {
	var out []Measurement
	for _, normalize := range []bool{false, true} {
		name := "decode"
		if normalize {
			name = "decode+normalize"
		}
		var best Measurement
		for range 2 {
			cpu0 := selfCPU()
			start := time.Now()
			var g errgroup.Group
			g.SetLimit(runtime.GOMAXPROCS(0))
			for i := range set.Objects {
				o := &set.Objects[i]
				g.Go(func() error {
					dec, err := cloudtrail.NewDecoder(bytes.NewReader(o.Body), cloudtrail.Limits{})
					if err != nil {
						return err
					}
					// decode+normalize goes as pgtrail goes: one pass
					// per record (Decoder.NextEntry).
					var row cloudtrail.Entry
					for {
						if normalize {
							err = dec.NextEntry(&row, "bucket", o.Key)
						} else {
							_, err = dec.Next()
						}
						if err == io.EOF {
							return nil
						}
						if err != nil {
							return err
						}
						if row.Reject != nil {
							return fmt.Errorf("%s: record %d: %s", o.Key, row.Reject.Index, row.Reject.Reason)
						}
					}
				})
			}
			if err := g.Wait(); err != nil {
				fatalf("decode: %v", err)
			}
			d := time.Since(start)
			m := Measurement{Name: name, Events: set.Records, Note: fmt.Sprintf("%d CPUs", runtime.GOMAXPROCS(0))}
			rate(&m, d, set.Compressed, set.Raw)
			m.CPUSecPerM = (selfCPU() - cpu0).Seconds() / float64(set.Records) * 1e6
			if m.EventsPerS > best.EventsPerS {
				best = m
			}
		}
		out = append(out, best)
	}
	return out
}

// normalizeAll returns the distinct events of set, normalized, in order.
func normalizeAll(set *gen.Set) ([]cloudtrail.Event, error) {
	seen := map[string]bool{}
	var evs []cloudtrail.Event
	for _, o := range set.Objects {
		if o.Dup {
			continue
		}
		dec, err := cloudtrail.NewDecoder(bytes.NewReader(o.Body), cloudtrail.Limits{})
		if err != nil {
			return nil, err
		}
		for {
			raw, err := dec.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			ev, err := cloudtrail.Normalize(raw, "bench", o.Key)
			if err != nil {
				return nil, err
			}
			if !seen[ev.EventID] {
				seen[ev.EventID] = true
				evs = append(evs, ev)
			}
		}
	}
	return evs, nil
}

// copyLimit measures a plain binary COPY of the distinct events, already
// normalized and encoded, into cloudtrail_events of a fresh database: two
// connections, 10,000 rows per transaction. The partitions exist.
func copyLimit(ctx context.Context, o options, set *gen.Set) (Measurement, error) {
	evs, err := normalizeAll(set)
	if err != nil {
		return Measurement{}, err
	}
	dbURL, conn, done, err := freshDB(ctx, o.server)
	if err != nil {
		return Measurement{}, err
	}
	defer done()
	if err := ensurePartitions(ctx, conn, evs); err != nil {
		return Measurement{}, err
	}
	jsonb, err := recordIsJSONB(ctx, conn)
	if err != nil {
		return Measurement{}, err
	}
	// A limit is the best the machine gives: the best of two runs (or of
	// -repeat), the table emptied in between.
	var m Measurement
	for i := range max(o.repeat, 2) {
		if i > 0 {
			if _, err := conn.Exec(ctx, `TRUNCATE cloudtrail_events`); err != nil {
				return Measurement{}, err
			}
		}
		mi, err := timeCopy(ctx, dbURL, evs, jsonb, sink.CopyEventsSQL)
		if err != nil {
			return Measurement{}, err
		}
		if mi.EventsPerS > m.EventsPerS {
			m = mi
		}
	}
	m.Name = "copy"
	m.Note = "2 connections, 10k rows/tx"
	// The compressed and raw sizes of the distinct events only.
	share := float64(len(evs)) / float64(set.Records)
	rate(&m, time.Duration(m.Seconds*float64(time.Second)), int64(float64(set.Compressed)*share), int64(float64(set.Raw)*share))
	return m, nil
}

// timeCopy COPYs evs with stmt over two connections, 10,000 rows per
// transaction, and times it (not the encoding).
func timeCopy(ctx context.Context, dbURL string, evs []cloudtrail.Event, jsonb bool, stmt string) (Measurement, error) {
	const chunk = 10_000
	var chunks [][]byte
	for i := 0; i < len(evs); i += chunk {
		chunks = append(chunks, sink.EncodeEvents(nil, evs[i:min(i+chunk, len(evs))], jsonb))
	}
	conns := make([]*pgx.Conn, 2)
	for i := range conns {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return Measurement{}, err
		}
		defer c.Close(ctx)
		conns[i] = c
	}
	var mu sync.Mutex
	next := 0
	meter := startServerMeter()
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range conns {
		g.Go(func() error {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(chunks) {
					return nil
				}
				tx, err := c.Begin(gctx)
				if err != nil {
					return err
				}
				if _, err := c.PgConn().CopyFrom(gctx, bytes.NewReader(chunks[i]), stmt); err != nil {
					_ = tx.Rollback(gctx)
					return err
				}
				if err := tx.Commit(gctx); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return Measurement{}, err
	}
	d := time.Since(start)
	m := Measurement{Events: len(evs), DBCPUSecPerM: meter.perMillion(len(evs))}
	m.Seconds = d.Seconds()
	m.EventsPerS = float64(len(evs)) / d.Seconds()
	return m, nil
}

// ensurePartitions creates the daily partitions evs fall in.
func ensurePartitions(ctx context.Context, conn *pgx.Conn, evs []cloudtrail.Event) error {
	days := map[string]bool{}
	for i := range evs {
		days[evs[i].EventTime.UTC().Format(time.DateOnly)] = true
	}
	var list []string
	for d := range days {
		list = append(list, d)
	}
	sort.Strings(list)
	for _, d := range list {
		if _, err := conn.Exec(ctx, `SELECT pgtrail_ensure_partition($1::date)`, d); err != nil {
			return fmt.Errorf("partition %s: %w", d, err)
		}
	}
	return nil
}

func recordIsJSONB(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var typ string
	err := conn.QueryRow(ctx, `SELECT atttypid::regtype::text FROM pg_attribute
		WHERE attrelid = 'cloudtrail_events'::regclass AND attname = 'record'`).Scan(&typ)
	return typ == "jsonb", err
}

// createDB creates an empty database on server and returns its URL and a
// function that drops it.
func createDB(ctx context.Context, server string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "pgtrail_bench_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

// freshDB creates a database on server with pgtrail's migrations applied
// and returns its URL and a connection to it; done closes the connection
// and drops the database.
func freshDB(ctx context.Context, server string) (dbURL string, conn *pgx.Conn, done func(), err error) {
	dbURL, drop, err := createDB(ctx, server)
	if err != nil {
		return "", nil, nil, err
	}
	conn, err = migrated(ctx, dbURL)
	if err != nil {
		drop()
		return "", nil, nil, err
	}
	return dbURL, conn, func() { conn.Close(ctx); drop() }, nil
}

// migrated applies pgtrail's migrations to dbURL and returns a connection.
func migrated(ctx context.Context, dbURL string) (*pgx.Conn, error) {
	pg, err := sink.Open(ctx, sink.Config{URL: dbURL, MaxConns: 2}, zap.NewNop())
	if err != nil {
		return nil, err
	}
	_, err = pg.Migrate(ctx)
	pg.Close()
	if err != nil {
		return nil, err
	}
	return pgx.Connect(ctx, dbURL)
}

func serverVersion(ctx context.Context, server string) string {
	c, err := pgx.Connect(ctx, server)
	if err != nil {
		return "unknown"
	}
	defer c.Close(ctx)
	var v string
	_ = c.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return v
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

var errTimeout = errors.New("timed out")
