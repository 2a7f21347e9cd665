package sink

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The event-history page's queries (package web): pages of events under
// combined filters, a capped count, activity per bucket of time, one
// event's whole row. They run on the Reader, as the reader role, read-only,
// and read a range in windows of time as LookupEvents does, so that no
// statement plans and locks more than lookupWindows' last span of day
// partitions.

// HistoryFilter selects events: every condition set must hold (AND).
type HistoryFilter struct {
	// Attributes are LookupEvents' (Username, EventName, ResourceName, …).
	Attributes []LookupAttribute
	// Account is the account the event was recorded in
	// (recipient_account_id, else user_identity_account_id).
	Account string
	// Region, SourceIP and ErrorCode match their columns exactly;
	// ErrorCode "*" matches every event that has an error.
	Region, SourceIP, ErrorCode string
	// NameContains matches event names that contain it, ignoring case.
	NameContains string
	// Start and End bound event_time, both inclusive.
	Start, End time.Time
}

// AnyError is the ErrorCode that matches every failed call.
const AnyError = "*"

// HistoryQuery is one page of events.
type HistoryQuery struct {
	HistoryFilter
	// Limit is the page size, at least 1.
	Limit int
	// Older, when set, continues with the events older than it; Newer with
	// the events newer than it. At most one is set.
	Older, Newer *LookupCursor
}

// HistoryEvent is one row of the page's table.
type HistoryEvent struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Name      string    `json:"name"`
	Source    string    `json:"source"`
	Username  string    `json:"user"`
	Account   string    `json:"account"`
	Region    string    `json:"region"`
	SourceIP  string    `json:"sourceIp"`
	ErrorCode string    `json:"error"`
}

// ActivityBucket counts the events of one bucket of time, and those of
// them that failed.
type ActivityBucket struct {
	Start  time.Time `json:"start"`
	Events int64     `json:"events"`
	Errors int64     `json:"errors"`
}

// usec is PostgreSQL's resolution: End+usec is the exclusive bound of an
// inclusive End.
const usec = time.Microsecond

// historyWhere is the filter's conditions, less the time bounds.
func historyWhere(f HistoryFilter, arg func(any) string) ([]string, error) {
	var where []string
	for _, a := range f.Attributes {
		c, err := attributeCond(a, arg)
		if err != nil {
			return nil, err
		}
		where = append(where, c)
	}
	if f.Account != "" {
		where = append(where, "coalesce(recipient_account_id, user_identity_account_id) = "+arg(f.Account))
	}
	if f.Region != "" {
		where = append(where, "aws_region = "+arg(f.Region))
	}
	if f.SourceIP != "" {
		where = append(where, "source_ip_address = "+arg(f.SourceIP))
	}
	switch f.ErrorCode {
	case "":
	case AnyError:
		where = append(where, "error_code IS NOT NULL")
	default:
		where = append(where, "error_code = "+arg(f.ErrorCode))
	}
	if f.NameContains != "" {
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f.NameContains)
		where = append(where, "event_name ILIKE "+arg("%"+esc+"%"))
	}
	return where, nil
}

// historyStatement is one window's statement: sel and tail around the
// filter's conditions and the window's half-open bounds [lo, hi).
type historyStatement struct {
	sql  string
	args []any
}

func buildHistory(f HistoryFilter, lo, hi time.Time, extra func(arg func(any) string) []string, sel, tail string) (historyStatement, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where := timeConds(f.Attributes, lo, hi, false, arg)
	w, err := historyWhere(f, arg)
	if err != nil {
		return historyStatement{}, err
	}
	where = append(where, w...)
	if extra != nil {
		where = append(where, extra(arg)...)
	}
	return historyStatement{sql: sel + "\nFROM cloudtrail_events\nWHERE " + strings.Join(where, "\n  AND ") + tail, args: args}, nil
}

// windows calls run on [lo, hi) cut into lookupWindows' spans, from hi down
// (or from lo up when up is set), until run says stop or the range, clamped
// to the oldest partition, is covered.
func (r *Reader) windows(ctx context.Context, lo, hi time.Time, up bool, run func(lo, hi time.Time) (stop bool, err error)) error {
	parts, oldest, err := r.oldestPartition(ctx)
	if err != nil || parts == 0 {
		return err
	}
	if oldest.After(lo) {
		lo = oldest
	}
	for i := 0; lo.Before(hi); i++ {
		span := lookupWindows[min(i, len(lookupWindows)-1)]
		wlo, whi := lo, hi
		switch {
		case oldest.IsZero() && i >= len(lookupWindows)-1:
			// Partitions of no known lower bound: the rest at once.
		case up && lo.Add(span).Before(hi):
			whi = lo.Add(span)
		case !up && hi.Add(-span).After(lo):
			wlo = hi.Add(-span)
		}
		stop, err := run(wlo, whi)
		if err != nil || stop {
			return err
		}
		if up {
			lo = whi
		} else {
			hi = wlo
		}
	}
	return nil
}

// historyColumns are HistoryEvent's, in order.
const historyColumns = `SELECT event_id, event_time, event_name, event_source, ` + usernameExpr + `,
       coalesce(recipient_account_id, user_identity_account_id), aws_region, source_ip_address, error_code`

// HistoryEvents returns one page of the events q selects, newest first,
// keyset-paged on (event_time, event_id): with q.Older the page holds the
// newest events older than it, with q.Newer the oldest events newer than it
// (still shown newest first).
func (r *Reader) HistoryEvents(ctx context.Context, q HistoryQuery) ([]HistoryEvent, error) {
	if q.Limit < 1 {
		return nil, fmt.Errorf("history: limit %d, want at least 1", q.Limit)
	}
	if q.Older != nil && q.Newer != nil {
		return nil, fmt.Errorf("history: a page is older or newer than a cursor, not both")
	}
	lo, hi := q.Start, q.End.Add(usec)
	up, order := false, "DESC"
	var cursor func(arg func(any) string) []string
	switch {
	case q.Older != nil:
		hi = minTime(hi, q.Older.Time.Add(usec))
		cursor = func(arg func(any) string) []string {
			return []string{"(event_time, event_id) < (" + arg(q.Older.Time) + ", " + arg(q.Older.ID) + ")"}
		}
	case q.Newer != nil:
		up, order = true, "ASC"
		if q.Newer.Time.After(lo) {
			lo = q.Newer.Time
		}
		cursor = func(arg func(any) string) []string {
			return []string{"(event_time, event_id) > (" + arg(q.Newer.Time) + ", " + arg(q.Newer.ID) + ")"}
		}
	}
	var out []HistoryEvent
	err := r.windows(ctx, lo, hi, up, func(lo, hi time.Time) (bool, error) {
		st, err := buildHistory(q.HistoryFilter, lo, hi, cursor, historyColumns,
			"\nORDER BY event_time "+order+", event_id "+order+"\nLIMIT "+strconv.Itoa(q.Limit-len(out)))
		if err != nil {
			return true, err
		}
		rows, err := r.pool.Query(ctx, st.sql, st.args...)
		if err != nil {
			return true, fmt.Errorf("postgres: history: %w", classify(err))
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (HistoryEvent, error) {
			var e HistoryEvent
			var name, source, user, account, region, ip, code *string
			err := row.Scan(&e.ID, &e.Time, &name, &source, &user, &account, &region, &ip, &code)
			e.Name, e.Source, e.Username, e.Account = deref(name), deref(source), deref(user), deref(account)
			e.Region, e.SourceIP, e.ErrorCode = deref(region), deref(ip), deref(code)
			return e, err
		})
		if err != nil {
			return true, fmt.Errorf("postgres: history: %w", classify(err))
		}
		out = append(out, page...)
		return len(out) >= q.Limit, nil
	})
	if err != nil {
		return nil, err
	}
	if up {
		slices.Reverse(out)
	}
	return out, nil
}

// CountHistory counts the events f selects, up to limit: it stops there and
// says so (capped), so that a count over a busy range costs no more than
// reading limit rows.
func (r *Reader) CountHistory(ctx context.Context, f HistoryFilter, limit int64) (n int64, capped bool, err error) {
	err = r.windows(ctx, f.Start, f.End.Add(usec), false, func(lo, hi time.Time) (bool, error) {
		st, err := buildHistory(f, lo, hi, nil, "SELECT count(*) FROM (SELECT 1", "\nLIMIT "+strconv.FormatInt(limit-n+1, 10)+") s")
		if err != nil {
			return true, err
		}
		var c int64
		if err := r.pool.QueryRow(ctx, st.sql, st.args...).Scan(&c); err != nil {
			return true, fmt.Errorf("postgres: history count: %w", classify(err))
		}
		n += c
		return n > limit, nil
	})
	if n > limit {
		return limit, true, err
	}
	return n, false, err
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
