package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotFound reports that no event or alert has the key asked for.
var ErrNotFound = errors.New("not found")

// HistoryField is one normalized column of an event, as text.
type HistoryField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HistoryRecord is one event in full: the record as CloudTrail wrote it
// and the columns pgtrail normalized it into, in the table's order, with
// LookupEvents' derived username and resources last.
type HistoryRecord struct {
	Record json.RawMessage `json:"record"`
	Fields []HistoryField  `json:"fields"`
}

// HistoryRecord returns the event with this id and time.
func (r *Reader) HistoryRecord(ctx context.Context, id string, at time.Time) (*HistoryRecord, error) {
	rows, err := r.pool.Query(ctx, `SELECT e.*, `+usernameExpr+` AS lookup_username, `+resourceKeysExpr+` AS lookup_resources
FROM cloudtrail_events e WHERE event_id = $1 AND event_time = $2`, id, at)
	if err != nil {
		return nil, fmt.Errorf("postgres: history record: %w", classify(err))
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("postgres: history record: %w", classify(err))
		}
		return nil, ErrNotFound
	}
	vals, err := rows.Values()
	if err != nil {
		return nil, fmt.Errorf("postgres: history record: %w", err)
	}
	out := &HistoryRecord{}
	for i, fd := range rows.FieldDescriptions() {
		v := vals[i]
		switch fd.Name {
		case "record":
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("postgres: history record: %w", err)
			}
			out.Record = b
			continue
		case "lookup_resources":
			keys, _ := v.([]any)
			var s []string
			for _, k := range keys {
				if k, ok := k.(string); ok {
					s = append(s, k)
				}
			}
			v = resourcesOf(s)
		}
		out.Fields = append(out.Fields, HistoryField{Name: fd.Name, Value: fieldText(v)})
	}
	return out, rows.Err()
}

// fieldText writes a column's value for reading: NULL as "", times in
// RFC 3339, JSON as JSON.
func fieldText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []LookupResource:
		if len(v) == 0 {
			return ""
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// OpenAlert is one unacknowledged alert, with what its rule says.
type OpenAlert struct {
	ID          string    `json:"id"`
	RuleID      string    `json:"ruleId"`
	Title       string    `json:"title"`
	Level       string    `json:"level"`
	Tags        []string  `json:"tags"`
	Author      string    `json:"author"`
	EventID     string    `json:"eventId"`
	EventTime   time.Time `json:"eventTime"`
	EventSource string    `json:"eventSource"`
	EventName   string    `json:"eventName"`
	Region      string    `json:"region"`
	Account     string    `json:"account"`
	Principal   string    `json:"principal"`
	SourceIP    string    `json:"sourceIp"`
	Created     time.Time `json:"created"`
	Status      string    `json:"status"`
	// RuleAlerts counts the rule's open alerts, of which at most perRule
	// are returned.
	RuleAlerts int64 `json:"ruleAlerts"`
}

// OpenAlerts returns the unacknowledged alerts, the worst level first, then
// by rule, each rule's newest perRule events first, with the count of
// each rule's open alerts. Before migration 0009 there are none.
func (r *Reader) OpenAlerts(ctx context.Context, perRule int) ([]OpenAlert, error) {
	var exists bool
	if err := r.pool.QueryRow(ctx, `SELECT to_regclass('cloudtrail_alerts') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: open alerts: %w", classify(err))
	}
	if !exists {
		return nil, nil
	}
	rows, err := r.pool.Query(ctx, `
SELECT id::text, rule_id, title, coalesce(level, ''), tags, coalesce(author, ''), event_id, event_time,
       coalesce(event_source, ''), coalesce(event_name, ''), coalesce(aws_region, ''), coalesce(account_id, ''),
       coalesce(principal_arn, ''), coalesce(source_ip_address, ''), created, status, n
FROM (SELECT a.*, row_number() OVER w AS k, count(*) OVER (PARTITION BY rule_id) AS n
      FROM cloudtrail_alerts a
      WHERE acknowledged_at IS NULL
      WINDOW w AS (PARTITION BY rule_id ORDER BY event_time DESC, event_id DESC)) s
WHERE k <= $1
ORDER BY coalesce(array_position(ARRAY['critical', 'high', 'medium', 'low', 'informational'], level), 6),
         n DESC, rule_id, event_time DESC, event_id DESC`, perRule)
	if err != nil {
		return nil, fmt.Errorf("postgres: open alerts: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[OpenAlert])
	if err != nil {
		return nil, fmt.Errorf("postgres: open alerts: %w", classify(err))
	}
	return out, nil
}
