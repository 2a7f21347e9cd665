package alert

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// Message is one alert, or one rule's summary, on its way to a
// destination.
type Message struct {
	// ID is the alert's (or summary's) id: the idempotency key, the same
	// at every attempt and from every relay.
	ID string
	// Alert or Summary is set.
	Alert   *sink.Alert
	Summary *sink.AlertSummary
}

// The types of message, as Payload's type and the webhook's type.
const (
	TypeAlert   = "pgtrail.alert"
	TypeSummary = "pgtrail.alert.summary"
)

// Payload is a message as JSON: the SNS message, and the data of the
// webhook's body.
type Payload struct {
	ID   string      `json:"id"`
	Type string      `json:"type"`
	Rule RulePayload `json:"rule"`
	// Event is the alert's event.
	Event *EventPayload `json:"event,omitempty"`
	// RaisedAt is when the alert was stored.
	RaisedAt *time.Time `json:"raised_at,omitempty"`
	// Window, Sent and Suppressed are a summary's: in the window, Sent
	// alerts were sent one by one and Suppressed held back, for events
	// from FirstEventTime to LastEventTime.
	Window         *WindowPayload `json:"window,omitempty"`
	Sent           int            `json:"sent,omitempty"`
	Suppressed     int            `json:"suppressed,omitempty"`
	FirstEventTime *time.Time     `json:"first_event_time,omitempty"`
	LastEventTime  *time.Time     `json:"last_event_time,omitempty"`
}

// RulePayload is the rule that raised an alert. Author is shown with every
// alert: the SigmaHQ rules' licence asks for it.
type RulePayload struct {
	ID     string   `json:"id"`
	Title  string   `json:"title"`
	Level  string   `json:"level,omitempty"`
	Tags   []string `json:"tags,omitempty"`
	Author string   `json:"author,omitempty"`
	File   string   `json:"file,omitempty"`
}

// EventPayload is the event that raised an alert; its record is in
// cloudtrail_events, by ID and Time.
type EventPayload struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Source       string    `json:"source,omitempty"`
	Name         string    `json:"name,omitempty"`
	Region       string    `json:"region,omitempty"`
	AccountID    string    `json:"account_id,omitempty"`
	PrincipalARN string    `json:"principal_arn,omitempty"`
	SourceIP     string    `json:"source_ip_address,omitempty"`
}

// WindowPayload is a throttle window.
type WindowPayload struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Payload returns the message as JSON's structure.
func (m *Message) Payload() Payload {
	if s := m.Summary; s != nil {
		first, last := s.FirstEventTime.UTC(), s.LastEventTime.UTC()
		return Payload{
			ID: m.ID, Type: TypeSummary,
			Rule:   RulePayload{ID: s.RuleID, Title: s.Title, Level: s.Level, Author: s.Author},
			Window: &WindowPayload{Start: s.WindowStart.UTC(), End: s.WindowEnd.UTC()},
			Sent:   s.Sent, Suppressed: s.Suppressed, FirstEventTime: &first, LastEventTime: &last,
		}
	}
	a := m.Alert
	raised := a.Created.UTC()
	return Payload{
		ID: m.ID, Type: TypeAlert,
		Rule: RulePayload{ID: a.RuleID, Title: a.Title, Level: a.Level, Tags: a.Tags, Author: a.Author, File: a.RuleFile},
		Event: &EventPayload{
			ID: a.EventID, Time: a.EventTime.UTC(), Source: a.EventSource, Name: a.EventName, Region: a.AWSRegion,
			AccountID: a.AccountID, PrincipalARN: a.PrincipalARN, SourceIP: a.SourceIP,
		},
		RaisedAt: &raised,
	}
}

// JSON encodes the payload.
func (m *Message) JSON() []byte {
	b, err := json.Marshal(m.Payload())
	if err != nil {
		panic("alert: encode payload: " + err.Error()) // plain strings and times
	}
	return b
}

// RuleID and Level are the message's rule's.
func (m *Message) RuleID() string {
	if m.Summary != nil {
		return m.Summary.RuleID
	}
	return m.Alert.RuleID
}

func (m *Message) Level() string {
	if m.Summary != nil {
		return m.Summary.Level
	}
	return m.Alert.Level
}

// Subject is a one-line title: the level and the rule's title, and for a
// summary how many alerts it tells.
func (m *Message) Subject() string {
	level := strings.ToUpper(m.Level())
	if level == "" {
		level = "ALERT"
	}
	if s := m.Summary; s != nil {
		return fmt.Sprintf("[%s] %s: %d more alerts held back", level, s.Title, s.Suppressed)
	}
	return fmt.Sprintf("[%s] %s", level, m.Alert.Title)
}

// Text is the message for a person: what happened, who did it, where, and
// the rule and its author.
func (m *Message) Text() string {
	var b strings.Builder
	if s := m.Summary; s != nil {
		fmt.Fprintf(&b, "%s\nRule %q (%s) raised %d alerts from %s to %s: %d were sent one by one, %d more were held back "+
			"(events from %s to %s). They are in cloudtrail_alerts (rule_id = '%s').\nRule by %s.",
			m.Subject(), s.Title, s.RuleID, s.Sent+s.Suppressed, s.WindowStart.UTC().Format(time.RFC3339),
			s.WindowEnd.UTC().Format(time.RFC3339), s.Sent, s.Suppressed,
			s.FirstEventTime.UTC().Format(time.RFC3339), s.LastEventTime.UTC().Format(time.RFC3339), s.RuleID, orUnknown(s.Author))
		return b.String()
	}
	a := m.Alert
	fmt.Fprintf(&b, "%s\n%s %s by %s in account %s, %s, at %s from %s.\nEvent %s. Rule %s (%s), by %s.",
		m.Subject(), a.EventSource, a.EventName, orUnknown(a.PrincipalARN), orUnknown(a.AccountID), orUnknown(a.AWSRegion),
		a.EventTime.UTC().Format(time.RFC3339), orUnknown(a.SourceIP), a.EventID, a.RuleID, a.RuleFile, orUnknown(a.Author))
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
