package sink

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Events that PostgreSQL refuses. A value the writer cannot foresee as
// refused (checkEvent foresees some) fails the statement that carries it, and
// with it the transaction of every object in the batch. So that one such
// record costs only itself:
//
//  1. The buffered path's COPY is given up for the staging path
//     (writeBuffered), whose COPY cannot fail on a JSON value: the staging
//     table holds JSON as text.
//  2. writeStaged inserts the staged events under a savepoint. If
//     PostgreSQL refuses the insert, insertRefusing rolls back to it and
//     tries each staged JSON value alone (checkJSON): what jsonb refuses,
//     such as a number beyond numeric's range, is the likely cause, and
//     this finds it without a write, so without spending a transaction ID
//     per row. The events it finds become rejects, and the rest are
//     inserted as one statement again.
//  3. If PostgreSQL still refuses, for a reason no cast shows (an index or
//     a constraint an operator added), each event is inserted alone in a
//     subtransaction of its own (insertEach): slower, and a transaction ID
//     per event, but it finds whatever PostgreSQL refuses.
//
// A refused event is stored in cloudtrail_rejects with PostgreSQL's message
// and SQLSTATE, at its record's index, and the record as raw; it counts
// for its object as rejected, not as an event. Whatever the database does
// not refuse is stored as it would have been, in the same transaction, so
// that a redelivery still finds the ledger row, or the events and rejects
// already stored.

// jsonColumns are the columns that the staging table holds as text and
// cloudtrail_events as jsonb (record: jsonb or json), with the fields of
// the record they come from, in the order checkJSON tries them.
var jsonColumns = [][2]string{
	{"request_parameters", "requestParameters"},
	{"response_elements", "responseElements"},
	{"additional_event_data", "additionalEventData"},
	{"resources", "resources"},
	{"record", "the record"},
}

// staged are the statements of the staging path for a record column of
// type json ([0]) and jsonb ([1]).
var staged = [2]stagedSQL{newStagedSQL("json"), newStagedSQL("jsonb")}

// stagedSQL are the staging path's statements for one type of the record
// column.
type stagedSQL struct {
	insert, checkJSON, insertEach string
}

func stagedFor(recordJSONB bool) *stagedSQL {
	if recordJSONB {
		return &staged[1]
	}
	return &staged[0]
}

// refusedReason formats, in PL/pgSQL, the reason of a refused event.
const refusedReason = `format('PostgreSQL refused %s: %s (SQLSTATE %s)', what, SQLERRM, SQLSTATE)`

func newStagedSQL(recordType string) stagedSQL {
	cast := func(col string) string {
		if col == "record" {
			return col + "::" + recordType
		}
		return col + "::jsonb"
	}
	var cols []string
	for _, c := range eventColumnNames() {
		for _, j := range jsonColumns {
			if c == j[0] {
				c = cast(c)
			}
		}
		cols = append(cols, c)
	}
	selectList := strings.Join(cols, ", ")

	var tries strings.Builder
	for _, j := range jsonColumns {
		fmt.Fprintf(&tries, "\n            what := %s;\n            PERFORM r.%s;", quoteLiteral(j[1]), cast(j[0]))
	}
	return stagedSQL{
		insert: fmt.Sprintf(insertEvents, eventColumns, selectList),
		checkJSON: `DO $$
DECLARE
    r record;
    what text;
BEGIN
    FOR r IN SELECT ctid AS id, request_parameters, response_elements, additional_event_data, resources, record
             FROM pgtrail_staging WHERE reason IS NULL LOOP
        BEGIN` + tries.String() + `
        EXCEPTION WHEN data_exception OR program_limit_exceeded THEN
            UPDATE pgtrail_staging s SET reason = ` + refusedReason + `, raw = s.record WHERE ctid = r.id;
        END;
    END LOOP;
END
$$`,
		insertEach: `DO $$
DECLARE
    r record;
    n integer;
    what text := 'the event';
BEGIN
    FOR r IN SELECT ctid AS id FROM pgtrail_staging WHERE reason IS NULL ORDER BY ` + stagedOrder + ` LOOP
        BEGIN
            INSERT INTO cloudtrail_events (` + eventColumns + `)
                SELECT ` + selectList + ` FROM pgtrail_staging WHERE ctid = r.id
                ON CONFLICT DO NOTHING;
            GET DIAGNOSTICS n = ROW_COUNT;
        EXCEPTION WHEN data_exception OR program_limit_exceeded OR not_null_violation OR check_violation THEN
            IF SQLERRM LIKE 'no partition of relation %' THEN
                RAISE;
            END IF;
            UPDATE pgtrail_staging s SET reason = ` + refusedReason + `, raw = s.record WHERE ctid = r.id;
            CONTINUE;
        END;
        IF n = 0 THEN
            UPDATE pgtrail_staging SET dup = true WHERE ctid = r.id;
        END IF;
    END LOOP;
END
$$`,
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// countRefused counts, per object, the events refused and those inserted
// (by insertEach: the rest were stored already).
const countRefused = `SELECT obj, count(*) FILTER (WHERE reason IS NOT NULL AND event_id IS NOT NULL),
    count(*) FILTER (WHERE reason IS NULL AND NOT dup)
    FROM pgtrail_staging GROUP BY obj`

// insertRefusing inserts the staged events after PostgreSQL refused the
// insert of them all, as described above, and returns how many it
// refused. Its error is not classified: a refused one is left (3) only by
// what no event is to blame for.
func (p *Postgres) insertRefusing(ctx context.Context, tx pgx.Tx, stmts *stagedSQL, objs []*Object, res []WriteResult, alerts []byte, act hourCounts) (int, error) {
	if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT pgtrail_insert`); err != nil {
		return 0, fmt.Errorf("postgres: rollback to savepoint: %w", err)
	}
	if _, err := tx.Exec(ctx, stmts.checkJSON); err != nil {
		return 0, fmt.Errorf("postgres: check JSON: %w", err)
	}
	if _, err := tx.Exec(ctx, `SAVEPOINT pgtrail_checked`); err != nil {
		return 0, fmt.Errorf("postgres: savepoint: %w", err)
	}
	err := p.insertStaged(ctx, tx, stmts.insert, objs, res, alerts, act)
	each := refused(err)
	if each {
		p.log.Warn("PostgreSQL refused a value that no cast shows; inserting the events one at a time", zap.Error(err))
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT pgtrail_checked`); err != nil {
			return 0, fmt.Errorf("postgres: rollback to savepoint: %w", err)
		}
		if _, err := tx.Exec(ctx, stmts.insertEach); err != nil {
			return 0, fmt.Errorf("postgres: insert events one at a time: %w", p.missingPartition(err))
		}
		if alerts != nil {
			if _, err := tx.Exec(ctx, insertStagedAlerts, alerts); err != nil {
				return 0, fmt.Errorf("postgres: insert alerts: %w", err)
			}
		}
		clear(act)
		rows, _ := tx.Query(ctx, stagedActivity)
		if err := readActivity(rows, act); err != nil {
			return 0, fmt.Errorf("postgres: count activity: %w", err)
		}
	} else if err != nil {
		return 0, err
	}

	rows, err := tx.Query(ctx, countRefused)
	if err != nil {
		return 0, fmt.Errorf("postgres: count refused: %w", err)
	}
	defer rows.Close()
	total := 0
	for rows.Next() {
		var obj, n, inserted int
		if err := rows.Scan(&obj, &n, &inserted); err != nil {
			return 0, fmt.Errorf("postgres: count refused: %w", err)
		}
		if obj < 0 || obj >= len(res) {
			continue
		}
		res[obj].Events -= n
		res[obj].Rejected += n
		if each {
			res[obj].Inserted = inserted
		}
		total += n
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("postgres: count refused: %w", err)
	}
	return total, nil
}
