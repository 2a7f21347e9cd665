package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// Alerts (migrations/0009_alerts.sql). The write path stores, in the
// transaction that inserts an event, one cloudtrail_alerts row for each
// alert rule the event matches; the relay (package alert) claims the rows
// that wait for delivery, delivers them and records what became of them,
// through the methods below. All of the SQL is here.

// AlertRule is what an alert says of the rule that raised it.
type AlertRule struct {
	ID, Title, Level, Author string
	Tags                     []string
	// File is the file the rule was read from.
	File string
}

// Matcher evaluates alert rules on one event, as cloudtrail.Normalize made
// it. It returns the rules the event matches, nil for none. It must be safe
// for concurrent use and keep no reference to the event.
type Matcher interface {
	Match(e *cloudtrail.Event) []*AlertRule
}

// alertNamespace makes alert ids: a UUID (version 5) of the rule's id and
// the event's key, the same wherever and however often the alert is raised.
var alertNamespace = uuid.MustParse("5d1c6a52-8a43-4c53-9f5e-0c6b7d1e2a90")

// AlertID returns the id of the alert that the rule raises on the event
// with this id and time: the idempotency key its destinations receive.
func AlertID(ruleID, eventID string, eventTime time.Time) string {
	key := ruleID + "\x00" + eventID + "\x00" + eventTime.UTC().Format(time.RFC3339Nano)
	return uuid.NewSHA1(alertNamespace, []byte(key)).String()
}

// summaryID returns the id of a rule's summary for a window.
func summaryID(ruleID string, windowStart time.Time) string {
	return uuid.NewSHA1(alertNamespace, []byte("summary\x00"+ruleID+"\x00"+windowStart.UTC().Format(time.RFC3339Nano))).String()
}

// newAlert is one alert as the writer stores it: the JSON of one element
// of insertAlerts' $1.
type newAlert struct {
	ID           string    `json:"id"`
	RuleID       string    `json:"rule_id"`
	Title        string    `json:"title"`
	Level        string    `json:"level,omitempty"`
	Tags         []string  `json:"tags"`
	Author       string    `json:"author,omitempty"`
	RuleFile     string    `json:"rule_file,omitempty"`
	EventID      string    `json:"event_id"`
	EventTime    time.Time `json:"event_time"`
	EventSource  string    `json:"event_source,omitempty"`
	EventName    string    `json:"event_name,omitempty"`
	AWSRegion    string    `json:"aws_region,omitempty"`
	AccountID    string    `json:"account_id,omitempty"`
	PrincipalARN string    `json:"principal_arn,omitempty"`
	SourceIP     string    `json:"source_ip_address,omitempty"`
	// Obj and Rec are, on the staged path, the staged row of the event
	// that raised the alert.
	Obj int `json:"obj"`
	Rec int `json:"rec"`
}

// alertColumns are the columns of cloudtrail_alerts that the writer fills.
const alertColumns = `id, rule_id, title, level, tags, author, rule_file, event_id, event_time,
    event_source, event_name, aws_region, account_id, principal_arn, source_ip_address`

// alertRecordset reads insertAlerts' $1, a JSON array of newAlert.
const alertRecordset = `jsonb_to_recordset($1::jsonb) AS a(id uuid, rule_id text, title text, level text,
    tags text[], author text, rule_file text, event_id text, event_time timestamptz, event_source text,
    event_name text, aws_region text, account_id text, principal_arn text, source_ip_address text,
    obj integer, rec integer)`

// insertAlerts stores alerts whose events this transaction inserted.
const insertAlerts = `INSERT INTO cloudtrail_alerts (` + alertColumns + `)
    SELECT ` + alertSelect + ` FROM ` + alertRecordset + `
    ON CONFLICT DO NOTHING`

// alertSelect is alertColumns as insertAlerts selects them.
const alertSelect = `a.id, a.rule_id, a.title, a.level, coalesce(a.tags, '{}'), a.author, a.rule_file, a.event_id,
    a.event_time, a.event_source, a.event_name, a.aws_region, a.account_id, a.principal_arn, a.source_ip_address`

// alertsJSON encodes alerts as insertAlerts' $1; nil for none.
func alertsJSON(alerts []newAlert) ([]byte, error) {
	if len(alerts) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(alerts)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode alerts: %w", err)
	}
	return b, nil
}

// The relay's side.

// Alert is a stored alert as the relay claims it.
type Alert struct {
	ID           string
	RuleID       string
	Title        string
	Level        string
	Tags         []string
	Author       string
	RuleFile     string
	EventID      string
	EventTime    time.Time
	EventSource  string
	EventName    string
	AWSRegion    string
	AccountID    string
	PrincipalARN string
	SourceIP     string
	Created      time.Time
	// Delivered are the destinations it was delivered to already;
	// Attempts, the most attempts any destination not yet delivered to
	// has had.
	Delivered []string
	Attempts  int
}

// AlertSummary is a rule's summary for a throttle window, as the relay
// claims it once the window has closed.
type AlertSummary struct {
	ID                           string
	RuleID, Title, Level, Author string
	WindowStart, WindowEnd       time.Time
	// Sent is how many of the rule's alerts in the window were sent one
	// by one; Suppressed, how many were held back.
	Sent, Suppressed int
	// FirstEventTime and LastEventTime span the held-back alerts' events.
	FirstEventTime, LastEventTime time.Time
	Delivered                     []string
	Attempts                      int
}

// ClaimOptions is how ClaimAlerts claims.
type ClaimOptions struct {
	// Limit is the most alerts claimed at once.
	Limit int
	// Lease is how long the claimed alerts are left to this relay: another
	// relay claims them again after it, if FinishAlerts has not been
	// called (a crash mid-delivery).
	Lease time.Duration
	// MaxAge settles as stale, unsent, the new alerts whose events are
	// older than this; 0 sends them whatever their age.
	MaxAge time.Duration
	// Throttle is how many alerts of one rule are sent one by one in a
	// Window; the rest are told in the rule's summary for the window. 0
	// sends them all.
	Throttle int
	Window   time.Duration
	// Destinations are the destinations to deliver to: their deliveries
	// are read with the alerts.
	Destinations []string
}

// ClaimResult counts what a claim did to the new alerts it found.
type ClaimResult struct {
	// Raised are the alerts no relay had seen before, by level.
	Raised map[string]int
	// Stale were settled unsent for their events' age; Throttled, held
	// back for their rules' summaries.
	Stale, Throttled int
}

// summaryGrace is how long after a window closes its summary is due: time
// for the claims that counted alerts in it to commit. A quarter of the
// window, at most ten seconds.
func summaryGrace(window time.Duration) time.Duration {
	return min(10*time.Second, window/4)
}

const claimAlerts = `SELECT id::text, rule_id, title, coalesce(level, ''), tags, coalesce(author, ''),
    coalesce(rule_file, ''), event_id, event_time, coalesce(event_source, ''), coalesce(event_name, ''),
    coalesce(aws_region, ''), coalesce(account_id, ''), coalesce(principal_arn, ''),
    coalesce(source_ip_address, ''), created, status
    FROM cloudtrail_alerts
    WHERE settled_at IS NULL AND next_attempt <= now()
    ORDER BY next_attempt, created, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED`

const updateAlerts = `UPDATE cloudtrail_alerts a SET status = u.status, next_attempt = u.next_attempt, settled_at = u.settled_at
    FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS u(id, status, next_attempt, settled_at)
    WHERE a.id = u.id`

const readDeliveries = `SELECT message_id::text, destination, attempts, delivered_at IS NOT NULL
    FROM cloudtrail_alert_deliveries WHERE message_id = ANY($1::uuid[]) AND destination = ANY($2::text[])`

// openSummary makes sure a rule's summary row for a window exists, and
// lockSummary locks it and reads how many alerts it let through.
const (
	openSummary = `INSERT INTO cloudtrail_alert_summaries (id, rule_id, title, level, author, window_start, window_end, next_attempt)
    VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8) ON CONFLICT (rule_id, window_start) DO NOTHING`
	lockSummary  = `SELECT sent FROM cloudtrail_alert_summaries WHERE rule_id = $1 AND window_start = $2 FOR UPDATE`
	countSummary = `UPDATE cloudtrail_alert_summaries SET sent = sent + $3, suppressed = suppressed + $4,
    first_event_time = least(first_event_time, $5), last_event_time = greatest(last_event_time, $6)
    WHERE rule_id = $1 AND window_start = $2`
	claimSummaries = `SELECT id::text, rule_id, title, coalesce(level, ''), coalesce(author, ''), window_start, window_end,
    sent, suppressed, coalesce(first_event_time, window_start), coalesce(last_event_time, window_end)
    FROM cloudtrail_alert_summaries
    WHERE settled_at IS NULL AND next_attempt <= now()
    ORDER BY next_attempt
    LIMIT $1
    FOR UPDATE SKIP LOCKED`
	updateSummaries = `UPDATE cloudtrail_alert_summaries s SET next_attempt = u.next_attempt, settled_at = u.settled_at
    FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS u(id, next_attempt, settled_at)
    WHERE s.id = u.id`
)

// ClaimAlerts claims up to opt.Limit alerts that wait for delivery and
// whose next attempt has come, skipping those another relay holds, and
// leases them for opt.Lease. New alerts are first settled as stale, held
// back by their rule's throttle, or let through; it returns those to
// deliver, each with the destinations it was delivered to already.
func (p *Postgres) ClaimAlerts(ctx context.Context, opt ClaimOptions) ([]Alert, ClaimResult, error) {
	res := ClaimResult{Raised: map[string]int{}}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, res, fmt.Errorf("postgres: claim alerts: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit

	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return nil, res, fmt.Errorf("postgres: claim alerts: %w", err)
	}
	rows, err := tx.Query(ctx, claimAlerts, opt.Limit)
	if err != nil {
		return nil, res, fmt.Errorf("postgres: claim alerts: %w", err)
	}
	var (
		claimed []Alert
		status  []string
	)
	for rows.Next() {
		var a Alert
		var st string
		if err := rows.Scan(&a.ID, &a.RuleID, &a.Title, &a.Level, &a.Tags, &a.Author, &a.RuleFile, &a.EventID,
			&a.EventTime, &a.EventSource, &a.EventName, &a.AWSRegion, &a.AccountID, &a.PrincipalARN, &a.SourceIP,
			&a.Created, &st); err != nil {
			rows.Close()
			return nil, res, fmt.Errorf("postgres: claim alerts: %w", err)
		}
		claimed = append(claimed, a)
		status = append(status, st)
	}
	if err := rows.Err(); err != nil {
		return nil, res, fmt.Errorf("postgres: claim alerts: %w", err)
	}
	if len(claimed) == 0 {
		return nil, res, nil
	}

	// New alerts: stale, throttled or let through, rule by rule.
	settled := make([]*time.Time, len(claimed))
	byRule := map[string][]int{}
	var rules []string
	for i := range claimed {
		if status[i] != "new" {
			continue
		}
		a := &claimed[i]
		res.Raised[a.Level]++
		switch {
		case opt.MaxAge > 0 && a.EventTime.Before(now.Add(-opt.MaxAge)):
			status[i], settled[i] = "stale", &now
			res.Stale++
		case opt.Throttle > 0 && opt.Window > 0:
			if _, ok := byRule[a.RuleID]; !ok {
				rules = append(rules, a.RuleID)
			}
			byRule[a.RuleID] = append(byRule[a.RuleID], i)
		default:
			status[i] = "sending"
		}
	}
	// Rules in a fixed order, so that two relays lock summaries the same way.
	slices.Sort(rules)
	start := now.Truncate(opt.Window)
	end := start.Add(opt.Window)
	for _, rule := range rules {
		idx := byRule[rule]
		a := &claimed[idx[0]]
		if _, err := tx.Exec(ctx, openSummary, summaryID(rule, start), rule, a.Title, a.Level, a.Author, start, end,
			end.Add(summaryGrace(opt.Window))); err != nil {
			return nil, res, fmt.Errorf("postgres: open alert summary: %w", err)
		}
		var sent int
		if err := tx.QueryRow(ctx, lockSummary, rule, start).Scan(&sent); err != nil {
			return nil, res, fmt.Errorf("postgres: lock alert summary: %w", err)
		}
		allowed := max(0, opt.Throttle-sent)
		var first, last *time.Time
		held := 0
		for k, i := range idx {
			if k < allowed {
				status[i] = "sending"
				continue
			}
			status[i], settled[i] = "throttled", &now
			held++
			t := claimed[i].EventTime
			if first == nil || t.Before(*first) {
				first = &t
			}
			if last == nil || t.After(*last) {
				last = &t
			}
		}
		res.Throttled += held
		if _, err := tx.Exec(ctx, countSummary, rule, start, min(allowed, len(idx)), held, first, last); err != nil {
			return nil, res, fmt.Errorf("postgres: count alert summary: %w", err)
		}
	}

	ids := make([]string, len(claimed))
	next := make([]time.Time, len(claimed))
	var deliver []string
	for i := range claimed {
		ids[i] = claimed[i].ID
		next[i] = now.Add(opt.Lease)
		if status[i] == "sending" {
			deliver = append(deliver, claimed[i].ID)
		}
	}
	if _, err := tx.Exec(ctx, updateAlerts, ids, status, next, settled); err != nil {
		return nil, res, fmt.Errorf("postgres: lease alerts: %w", err)
	}
	done, attempts, err := deliveries(ctx, tx, deliver, opt.Destinations)
	if err != nil {
		return nil, res, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, res, fmt.Errorf("postgres: claim alerts: commit: %w", err)
	}
	out := claimed[:0]
	for i, a := range claimed {
		if status[i] == "sending" {
			a.Delivered, a.Attempts = done[a.ID], attempts[a.ID]
			out = append(out, a)
		}
	}
	return out, res, nil
}

// deliveries reads, for the messages ids, the destinations each was
// delivered to and the most attempts of those it was not.
func deliveries(ctx context.Context, tx pgx.Tx, ids, destinations []string) (map[string][]string, map[string]int, error) {
	done, attempts := map[string][]string{}, map[string]int{}
	if len(ids) == 0 {
		return done, attempts, nil
	}
	rows, err := tx.Query(ctx, readDeliveries, ids, destinations)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: read alert deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, dest string
		var n int
		var ok bool
		if err := rows.Scan(&id, &dest, &n, &ok); err != nil {
			return nil, nil, fmt.Errorf("postgres: read alert deliveries: %w", err)
		}
		if ok {
			done[id] = append(done[id], dest)
		} else {
			attempts[id] = max(attempts[id], n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("postgres: read alert deliveries: %w", err)
	}
	return done, attempts, nil
}

// ClaimSummaries claims up to limit summaries whose windows have closed,
// leasing them like ClaimAlerts. A summary that held nothing back is
// settled at once: there is nothing to tell.
func (p *Postgres) ClaimSummaries(ctx context.Context, limit int, lease time.Duration, destinations []string) ([]AlertSummary, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim alert summaries: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return nil, fmt.Errorf("postgres: claim alert summaries: %w", err)
	}
	rows, err := tx.Query(ctx, claimSummaries, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim alert summaries: %w", err)
	}
	sums, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertSummary, error) {
		var s AlertSummary
		err := r.Scan(&s.ID, &s.RuleID, &s.Title, &s.Level, &s.Author, &s.WindowStart, &s.WindowEnd,
			&s.Sent, &s.Suppressed, &s.FirstEventTime, &s.LastEventTime)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim alert summaries: %w", err)
	}
	if len(sums) == 0 {
		return nil, nil
	}
	ids := make([]string, len(sums))
	next := make([]time.Time, len(sums))
	settled := make([]*time.Time, len(sums))
	var deliver []string
	for i, s := range sums {
		ids[i], next[i] = s.ID, now.Add(lease)
		if s.Suppressed == 0 {
			settled[i] = &now
		} else {
			deliver = append(deliver, s.ID)
		}
	}
	if _, err := tx.Exec(ctx, updateSummaries, ids, next, settled); err != nil {
		return nil, fmt.Errorf("postgres: lease alert summaries: %w", err)
	}
	done, attempts, err := deliveries(ctx, tx, deliver, destinations)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: claim alert summaries: commit: %w", err)
	}
	out := sums[:0]
	for _, s := range sums {
		if s.Suppressed > 0 {
			s.Delivered, s.Attempts = done[s.ID], attempts[s.ID]
			out = append(out, s)
		}
	}
	return out, nil
}

// Attempt is one delivery of a message to a destination.
type Attempt struct {
	Destination string
	// Err is why it failed; empty if it was delivered.
	Err string
}

// Outcome is what became of a claimed alert or summary.
type Outcome struct {
	ID string
	// Summary says the message is a summary, not an alert.
	Summary  bool
	Attempts []Attempt
	// Settled says it was delivered to every destination; else it is tried
	// again at NextAttempt.
	Settled     bool
	NextAttempt time.Time
}

const recordAttempt = `INSERT INTO cloudtrail_alert_deliveries AS d (message_id, destination, attempts, last_attempt, last_error, delivered_at)
    VALUES ($1, $2, 1, now(), NULLIF($3, ''), CASE WHEN $3 = '' THEN now() END)
    ON CONFLICT (message_id, destination) DO UPDATE SET attempts = d.attempts + 1, last_attempt = EXCLUDED.last_attempt,
        last_error = NULLIF($3, ''), delivered_at = coalesce(d.delivered_at, EXCLUDED.delivered_at)`

// FinishAlerts records the outcomes of a relay's deliveries, in one
// transaction: each attempt, and for each alert or summary, sent or when to
// try it again.
func (p *Postgres) FinishAlerts(ctx context.Context, outs []Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, o := range outs {
		for _, a := range o.Attempts {
			batch.Queue(recordAttempt, o.ID, a.Destination, a.Err)
		}
		switch {
		case o.Summary && o.Settled:
			batch.Queue(`UPDATE cloudtrail_alert_summaries SET settled_at = now() WHERE id = $1`, o.ID)
		case o.Summary:
			batch.Queue(`UPDATE cloudtrail_alert_summaries SET next_attempt = $2 WHERE id = $1`, o.ID, o.NextAttempt)
		case o.Settled:
			batch.Queue(`UPDATE cloudtrail_alerts SET status = 'sent', settled_at = now() WHERE id = $1`, o.ID)
		default:
			batch.Queue(`UPDATE cloudtrail_alerts SET next_attempt = $2 WHERE id = $1`, o.ID, o.NextAttempt)
		}
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: record alert deliveries: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("postgres: record alert deliveries: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: record alert deliveries: commit: %w", err)
	}
	return nil
}

// AlertBacklog is what waits for delivery.
type AlertBacklog struct {
	// Waiting counts, per destination, the alerts not settled and not yet
	// delivered there.
	Waiting map[string]int
	// Oldest is when the oldest alert not settled was raised; zero if none.
	Oldest time.Time
}

const alertBacklog = `SELECT d, count(a.id), min(a.created)
    FROM unnest($1::text[]) AS d
    LEFT JOIN cloudtrail_alerts a ON a.settled_at IS NULL AND a.status IN ('new', 'sending')
        AND NOT EXISTS (SELECT 1 FROM cloudtrail_alert_deliveries x
                        WHERE x.message_id = a.id AND x.destination = d AND x.delivered_at IS NOT NULL)
    GROUP BY d`

// AlertBacklog reads what waits for delivery to destinations.
func (p *Postgres) AlertBacklog(ctx context.Context, destinations []string) (AlertBacklog, error) {
	b := AlertBacklog{Waiting: map[string]int{}}
	rows, err := p.pool.Query(ctx, alertBacklog, destinations)
	if err != nil {
		return b, fmt.Errorf("postgres: alert backlog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var n int
		var oldest *time.Time
		if err := rows.Scan(&d, &n, &oldest); err != nil {
			return b, fmt.Errorf("postgres: alert backlog: %w", err)
		}
		b.Waiting[d] = n
		if oldest != nil && (b.Oldest.IsZero() || oldest.Before(b.Oldest)) {
			b.Oldest = *oldest
		}
	}
	if err := rows.Err(); err != nil {
		return b, fmt.Errorf("postgres: alert backlog: %w", err)
	}
	return b, nil
}

// eventFacts is what an alert records of its event.
type eventFacts struct {
	ID                                string
	Time                              time.Time
	Source, Name, Region              string
	AccountID, PrincipalARN, SourceIP string
}

// appendAlerts appends to dst an alert for each rule m matches on the
// event. The common case, no match, allocates nothing.
func appendAlerts(dst []newAlert, m Matcher, ev *cloudtrail.Event) []newAlert {
	rules := m.Match(ev)
	if len(rules) == 0 {
		return dst
	}
	e := factsOf(ev)
	for _, r := range rules {
		// At the database's precision, as the event is stored.
		t := e.Time.Truncate(time.Microsecond)
		dst = append(dst, newAlert{
			ID: AlertID(r.ID, e.ID, t), RuleID: r.ID, Title: r.Title, Level: r.Level, Tags: r.Tags,
			Author: r.Author, RuleFile: r.File, EventID: e.ID, EventTime: t, EventSource: e.Source,
			EventName: e.Name, AWSRegion: e.Region, AccountID: e.AccountID, PrincipalARN: e.PrincipalARN,
			SourceIP: e.SourceIP,
		})
	}
	return dst
}

// SetMatcher makes every write evaluate m on each event it inserts and
// store the alerts it raises with the event, in the same transaction; nil
// raises none. Call it before the first write.
//
// The sink takes a Matcher rather than a rule set so that it depends on no
// rules engine: alert.Rules adapts package sigma's.
func (p *Postgres) SetMatcher(m Matcher) { p.matcher = m }

// factsOf is what an alert records of e.
func factsOf(e *cloudtrail.Event) *eventFacts {
	account := e.RecipientAccountID
	if account == "" {
		account = e.UserIdentityAccountID
	}
	return &eventFacts{
		ID: e.EventID, Time: e.EventTime, Source: e.EventSource, Name: e.EventName, Region: e.AWSRegion,
		AccountID: account, PrincipalARN: e.UserIdentityARN, SourceIP: e.SourceIPAddress,
	}
}

// matchAll evaluates the matcher on the buffered path's events, before its
// transaction; it returns the alerts of those that match, nil for none.
func (p *Postgres) matchAll(evs []*cloudtrail.Event) map[*cloudtrail.Event][]newAlert {
	if p.matcher == nil {
		return nil
	}
	var hits map[*cloudtrail.Event][]newAlert
	for _, e := range evs {
		if a := appendAlerts(nil, p.matcher, e); len(a) > 0 {
			if hits == nil {
				hits = map[*cloudtrail.Event][]newAlert{}
			}
			hits[e] = a
		}
	}
	return hits
}

// alertsOf returns as insertAlerts' $1 the alerts of evs; nil for none.
func alertsOf(evs []*cloudtrail.Event, hits map[*cloudtrail.Event][]newAlert) ([]byte, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	var alerts []newAlert
	for _, e := range evs {
		alerts = append(alerts, hits[e]...)
	}
	return alertsJSON(alerts)
}

// The staged path's insert (insertEvents) returns the keys of the events it
// inserted, and a second data-modifying CTE stores the alerts of those
// events, and only of those: a staged event that was stored already (ON
// CONFLICT DO NOTHING) raises none. Of two staged copies of one event (two
// objects, or two files of a trail, that differ in what they hold), the
// insert keeps the first staged (stagedOrder), and only that copy's alerts
// are stored: each alert names its staged row (obj, rec).
const (
	insertReturning = "RETURNING s3_bucket, s3_key, event_time, error_code\n)"
	alertingCTE     = `RETURNING s3_bucket, s3_key, event_id, event_time, error_code
), alerted AS (
    INSERT INTO cloudtrail_alerts (` + alertColumns + `)
    SELECT ` + alertSelect + ` FROM ` + alertRecordset + `
    JOIN pgtrail_staging me ON me.obj = a.obj AND me.rec = a.rec AND me.reason IS NULL
    WHERE EXISTS (SELECT 1 FROM ins WHERE ins.event_id = a.event_id AND ins.event_time = a.event_time)
      AND NOT EXISTS (SELECT 1 FROM pgtrail_staging s
                      WHERE s.event_id = a.event_id AND s.event_time = a.event_time AND s.reason IS NULL
                        AND (s.obj, s.rec) < (me.obj, me.rec))
    ON CONFLICT DO NOTHING
)`
)

// insertingAlerts returns insert, the staged path's insert statement, with
// the CTE that stores the alerts in $1 of the events it inserts.
func insertingAlerts(insert string) string {
	if !strings.Contains(insert, insertReturning) {
		panic("sink: the staged insert no longer ends its CTE with " + insertReturning)
	}
	return strings.Replace(insert, insertReturning, alertingCTE, 1)
}

// insertStagedAlerts stores the alerts in $1 of the staged events that
// insertEach inserted (refuse.go): those neither refused nor found stored.
const insertStagedAlerts = `INSERT INTO cloudtrail_alerts (` + alertColumns + `)
    SELECT ` + alertSelect + ` FROM ` + alertRecordset + `
    JOIN pgtrail_staging me ON me.obj = a.obj AND me.rec = a.rec AND me.reason IS NULL AND NOT me.dup
    ON CONFLICT DO NOTHING`
