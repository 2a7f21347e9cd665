package sink_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sink"
)

// TestColumnsMatchTable checks cloudtrail.Columns, which the writer's
// staging table, column lists and COPY stream are built from, against
// cloudtrail_events as the migrations leave it: the same columns in the
// same order and of the same types, besides ingested_at, which the
// database fills.
func TestColumnsMatchTable(t *testing.T) {
	t.Parallel()
	pg := setup(t)
	rows, err := pg.Pool().Query(context.Background(), `SELECT column_name, udt_name
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'cloudtrail_events'
        ORDER BY ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	var got []cloudtrail.Column
	for rows.Next() {
		var c cloudtrail.Column
		if err := rows.Scan(&c.Name, &c.Type); err != nil {
			t.Fatal(err)
		}
		switch c.Type {
		case "bool":
			c.Type = "boolean"
		}
		if c.Name != "ingested_at" {
			got = append(got, c)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cloudtrail.Columns) {
		t.Fatalf("cloudtrail_events has %d columns the writer fills, cloudtrail.Columns %d:\n%v", len(got), len(cloudtrail.Columns), got)
	}
	for i, c := range cloudtrail.Columns {
		if got[i] != c {
			t.Errorf("column %d: the table has %s %s, cloudtrail.Columns %s %s", i+1, got[i].Name, got[i].Type, c.Name, c.Type)
		}
	}
}

// TestEncodeEventsColumns checks that the COPY stream carries one value
// per cloudtrail.Columns entry.
func TestEncodeEventsColumns(t *testing.T) {
	t.Parallel()
	b := sink.EncodeEvents(nil, []cloudtrail.Event{{EventID: "e", EventTime: time.Unix(0, 0), Record: []byte(`{}`)}}, true)
	const header = 19
	if n := int(binary.BigEndian.Uint16(b[header:])); n != len(cloudtrail.Columns) {
		t.Errorf("a row of %d values, want %d", n, len(cloudtrail.Columns))
	}
}
