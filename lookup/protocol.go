package lookup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/sink"
)

// request is LookupEvents' input, field for field.
type request struct {
	LookupAttributes []struct {
		AttributeKey   *string `json:"AttributeKey"`
		AttributeValue *string `json:"AttributeValue"`
	} `json:"LookupAttributes"`
	StartTime     *json.Number `json:"StartTime"`
	EndTime       *json.Number `json:"EndTime"`
	EventCategory *string      `json:"EventCategory"`
	MaxResults    *int64       `json:"MaxResults"`
	NextToken     *string      `json:"NextToken"`
}

// response is LookupEvents' output, field for field.
type response struct {
	Events    []event `json:"Events"`
	NextToken string  `json:"NextToken,omitempty"`

	attrs []sink.LookupAttribute // for the log
}

type event struct {
	EventID         string                `json:"EventId"`
	EventName       string                `json:"EventName,omitempty"`
	ReadOnly        string                `json:"ReadOnly,omitempty"`
	AccessKeyID     string                `json:"AccessKeyId,omitempty"`
	EventTime       epochSeconds          `json:"EventTime"`
	EventSource     string                `json:"EventSource,omitempty"`
	Username        string                `json:"Username,omitempty"`
	Resources       []sink.LookupResource `json:"Resources"`
	CloudTrailEvent string                `json:"CloudTrailEvent"`
}

// Limits of LookupEvents' input (its API reference).
const (
	maxResults       = 50
	maxAttributeSize = 2000
)

// insightAttributes are the attributes an Insights lookup may use.
var insightAttributes = []string{sink.AttrEventID, sink.AttrEventName, sink.AttrEventSource}

// lookup validates req, made with the access key keyID, as CloudTrail
// does, runs it, and shapes the answer.
func (s *Server) lookup(ctx context.Context, keyID string, req *request) (*response, *apiError) {
	q := sink.LookupQuery{Limit: maxResults}
	if req.MaxResults != nil {
		if *req.MaxResults < 1 || *req.MaxResults > maxResults {
			return nil, errInvalidMaxResults
		}
		q.Limit = int(*req.MaxResults)
	}
	if req.EventCategory != nil {
		if *req.EventCategory != "insight" {
			return nil, errInvalidEventCategory
		}
		q.Insight = true
	}
	if len(req.LookupAttributes) > 1 && !s.o.MultipleAttributes {
		return nil, errInvalidLookupAttributes("LookupAttributes takes one attribute (this server has not been set to accept several).")
	}
	for _, a := range req.LookupAttributes {
		switch {
		case a.AttributeKey == nil || !slices.Contains(sink.LookupAttributes, *a.AttributeKey):
			return nil, errInvalidLookupAttributes(fmt.Sprintf("AttributeKey must be one of %s.", strings.Join(sink.LookupAttributes, ", ")))
		case a.AttributeValue == nil || *a.AttributeValue == "" || len(*a.AttributeValue) > maxAttributeSize:
			return nil, errInvalidLookupAttributes(fmt.Sprintf("The value of %s must be 1 to %d characters.", *a.AttributeKey, maxAttributeSize))
		case *a.AttributeKey == sink.AttrReadOnly && *a.AttributeValue != "true" && *a.AttributeValue != "false":
			return nil, errInvalidLookupAttributes("The value of ReadOnly must be true or false.")
		case q.Insight && !slices.Contains(insightAttributes, *a.AttributeKey):
			return nil, errInvalidLookupAttributes(fmt.Sprintf("An insight lookup takes %s only.", strings.Join(insightAttributes, ", ")))
		}
		q.Attributes = append(q.Attributes, sink.LookupAttribute{Key: *a.AttributeKey, Value: *a.AttributeValue})
	}
	startGiven, start, err := epochTime(req.StartTime)
	if err != nil {
		return nil, errInvalidTimeRange("StartTime: " + err.Error())
	}
	endGiven, end, err := epochTime(req.EndTime)
	if err != nil {
		return nil, errInvalidTimeRange("EndTime: " + err.Error())
	}
	if startGiven && endGiven && start.After(end) {
		return nil, errInvalidTimeRange("StartTime must not be later than EndTime.")
	}
	now := s.o.Now()
	if !endGiven {
		end = now
	}
	if !startGiven {
		start = time.Unix(0, 0) // overridden by the window below, unless full history
		if s.o.FullHistory {
			start = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
		}
	}
	if !s.o.FullHistory {
		// CloudTrail answers from its last 90 days whatever StartTime says.
		start = maxTime(start, now.Add(-AWSWindow))
	}
	q.Start, q.End = start, end

	binding := bindQuery(keyID, req)
	if req.NextToken != nil {
		cur, ok := s.tokens.decode(binding, *req.NextToken, now)
		if !ok {
			return nil, errInvalidNextToken
		}
		q.After = &cur
	}
	resp := &response{Events: []event{}, attrs: q.Attributes}
	if q.Start.After(q.End) {
		return resp, nil
	}

	limit := q.Limit
	q.Limit++ // one more tells whether there is a next page
	events, err := s.o.Store.LookupEvents(ctx, q)
	if errors.Is(err, sink.ErrLookupAttribute) {
		return nil, errInvalidLookupAttributes(err.Error())
	}
	if err != nil {
		s.o.Log.Error("lookup query failed", zap.Error(err))
		return nil, errInternal
	}
	if len(events) > limit {
		events = events[:limit]
		last := events[limit-1]
		resp.NextToken = s.tokens.encode(binding, sink.LookupCursor{Time: last.EventTime, ID: last.EventID}, now.Add(TokenLifetime))
	}
	for _, e := range events {
		resources := e.Resources
		if resources == nil {
			resources = []sink.LookupResource{}
		}
		resp.Events = append(resp.Events, event{
			EventID: e.EventID, EventName: e.EventName, ReadOnly: e.ReadOnly, AccessKeyID: e.AccessKeyID,
			EventTime: epochSeconds(e.EventTime), EventSource: e.EventSource, Username: e.Username,
			Resources: resources, CloudTrailEvent: string(e.Record),
		})
	}
	return resp, nil
}

// bindQuery is what a NextToken is bound to: the access key that made the
// request, and the request less its page size and token, as the client
// sent it.
func bindQuery(keyID string, req *request) []byte {
	b, _ := json.Marshal(struct {
		K string
		A any
		S *json.Number
		E *json.Number
		C *string
	}{keyID, req.LookupAttributes, req.StartTime, req.EndTime, req.EventCategory})
	return b
}

// epochTime reads a JSON 1.1 timestamp: seconds since the epoch, possibly
// fractional.
func epochTime(n *json.Number) (bool, time.Time, error) {
	if n == nil {
		return false, time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return true, time.Time{}, fmt.Errorf("%q is not a time in seconds since the epoch", n.String())
	}
	sec, frac := math.Modf(f)
	return true, time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
