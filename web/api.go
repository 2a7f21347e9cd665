package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/sink"
)

// The time range presets, by their name in the page's URL.
var presets = map[string]time.Duration{
	"hour": time.Hour,
	"day":  24 * time.Hour,
	"week": 7 * 24 * time.Hour,
	"90d":  90 * 24 * time.Hour,
}

// Page sizes, and the count the page shows exactly before it says "more
// than".
const (
	defaultLimit  = 50
	maxLimit      = 500
	countCap      = 10000
	alertsPerRule = 50
)

// attrParams maps the URL's parameters to LookupEvents' attributes.
var attrParams = []struct{ param, attr string }{
	{"user", sink.AttrUsername},
	{"name", sink.AttrEventName},
	{"source", sink.AttrEventSource},
	{"eventId", sink.AttrEventID},
	{"accessKey", sink.AttrAccessKeyID},
	{"readOnly", sink.AttrReadOnly},
	{"resourceType", sink.AttrResourceType},
	{"resourceName", sink.AttrResourceName},
}

// badRequest is an error in the request's parameters, shown to the user.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func bad(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// filter reads the time range and filters of the page's URL: range (a
// preset) or from and to (RFC 3339), and the filter parameters.
func (h *Handler) filter(v url.Values) (sink.HistoryFilter, error) {
	var f sink.HistoryFilter
	now := h.o.Now().UTC()
	rng := v.Get("range")
	switch d, ok := presets[rng]; {
	case ok:
		f.Start, f.End = now.Add(-d), now
	case rng == "" || rng == "custom":
		if rng == "" && v.Get("from") == "" && v.Get("to") == "" {
			f.Start, f.End = now.Add(-presets["day"]), now
			break
		}
		var err error
		if f.Start, err = parseTime(v.Get("from"), time.Time{}); err != nil {
			return f, bad("from: %v", err)
		}
		if f.End, err = parseTime(v.Get("to"), now); err != nil {
			return f, bad("to: %v", err)
		}
	default:
		return f, bad("range: want hour, day, week, 90d or custom, got %q", rng)
	}
	if f.End.Before(f.Start) {
		return f, bad("the range ends before it starts")
	}
	for _, p := range attrParams {
		if s := strings.TrimSpace(v.Get(p.param)); s != "" {
			f.Attributes = append(f.Attributes, sink.LookupAttribute{Key: p.attr, Value: s})
		}
	}
	f.Account = strings.TrimSpace(v.Get("account"))
	f.Region = strings.TrimSpace(v.Get("region"))
	f.SourceIP = strings.TrimSpace(v.Get("ip"))
	f.ErrorCode = strings.TrimSpace(v.Get("error"))
	f.NameContains = strings.TrimSpace(v.Get("q"))
	return f, nil
}

// parseTime reads RFC 3339, with or without seconds and zone (then UTC),
// as a datetime-local input writes it; empty is def.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("want a time like 2024-05-01T13:00:00Z, got %q", s)
}

// parseCursor reads a page's cursor: the event's time, a comma, its ID.
func parseCursor(s string) (*sink.LookupCursor, error) {
	if s == "" {
		return nil, nil
	}
	ts, id, ok := strings.Cut(s, ",")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || id == "" {
		return nil, bad("cursor: want TIME,EVENT_ID, got %q", s)
	}
	return &sink.LookupCursor{Time: t, ID: id}, nil
}

func cursorOf(e sink.HistoryEvent) string {
	return e.Time.UTC().Format(time.RFC3339Nano) + "," + e.ID
}

// eventsPage is /api/events' answer.
type eventsPage struct {
	Events []sink.HistoryEvent `json:"events"`
	From   time.Time           `json:"from"`
	To     time.Time           `json:"to"`
	// Older and Newer are the cursors of the neighbouring pages, "" when
	// there is none.
	Older string `json:"older"`
	Newer string `json:"newer"`
}

// events answers one page of the table.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	f, err := h.filter(v)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := sink.HistoryQuery{HistoryFilter: f, Limit: defaultLimit}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 || q.Limit > maxLimit {
			h.fail(w, r, bad("limit: want 1 to %d, got %q", maxLimit, s))
			return
		}
	}
	if q.Older, err = parseCursor(v.Get("older")); err == nil {
		q.Newer, err = parseCursor(v.Get("newer"))
	}
	if err == nil && q.Older != nil && q.Newer != nil {
		err = bad("older and newer go alone")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	limit := q.Limit
	q.Limit++ // one more tells whether there is a page beyond
	ctx, cancel := h.ctx(r)
	defer cancel()
	evs, err := h.o.Store.HistoryEvents(ctx, q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	more := len(evs) > limit
	if more {
		if q.Newer != nil {
			evs = evs[1:] // the newest is beyond the page
		} else {
			evs = evs[:limit]
		}
	}
	p := eventsPage{Events: evs, From: f.Start, To: f.End}
	if p.Events == nil {
		p.Events = []sink.HistoryEvent{}
	}
	if n := len(evs); n > 0 {
		if more || q.Newer != nil {
			p.Older = cursorOf(evs[n-1])
		}
		if q.Older != nil || (q.Newer != nil && more) {
			p.Newer = cursorOf(evs[0])
		}
	}
	writeJSON(w, http.StatusOK, p)
}

// count answers the number of events in range, up to countCap.
func (h *Handler) count(w http.ResponseWriter, r *http.Request) {
	f, err := h.filter(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	n, capped, err := h.o.Store.CountHistory(ctx, f, countCap)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": n, "capped": capped})
}

// activity answers the chart's buckets: hours for a range of up to two
// weeks, days beyond, weeks beyond three years.
func (h *Handler) activity(w http.ResponseWriter, r *http.Request) {
	f, err := h.filter(r.URL.Query())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	bucket := time.Hour
	switch span := f.End.Sub(f.Start); {
	case span > 3*365*24*time.Hour:
		bucket = 7 * 24 * time.Hour
	case span > 14*24*time.Hour:
		bucket = 24 * time.Hour
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	b, err := h.o.Store.HistoryActivity(ctx, f, bucket)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if b == nil {
		b = []sink.ActivityBucket{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": f.Start, "to": f.End, "bucketSeconds": bucket.Seconds(), "buckets": b})
}

// event answers one record in full, by id and time.
func (h *Handler) event(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	at, err := time.Parse(time.RFC3339Nano, v.Get("at"))
	if err != nil || v.Get("id") == "" {
		h.fail(w, r, bad("want id and at (the event's time, RFC 3339)"))
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	rec, err := h.o.Store.HistoryRecord(ctx, v.Get("id"), at)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// alerts answers the open alerts.
func (h *Handler) alerts(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	a, err := h.o.Store.OpenAlerts(ctx, alertsPerRule)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if a == nil {
		a = []sink.OpenAlert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": a, "perRule": alertsPerRule})
}

func (h *Handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.o.QueryTimeout)
}

// fail answers an error: the request's own in its words, a missing event
// as 404, anything else as 500 with the detail in the log only.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	switch {
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, br.msg)
	case errors.Is(err, sink.ErrLookupAttribute):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, sink.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such event")
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "the query took too long; narrow the range or add a filter")
	default:
		h.o.Log.Error("web query failed", zap.String("path", r.URL.Path), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "the query failed; see the server's log")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
