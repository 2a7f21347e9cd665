package alert

import (
	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/sigma"
	"github.com/pgtrail/pgtrail/sink"
)

// Rules is a compiled rule set as the sink's Matcher: what it returns
// describes each matched rule as its alerts store it.
type Rules struct {
	set   *sigma.Set
	rules map[*sigma.Rule]*sink.AlertRule
}

var _ sink.Matcher = (*Rules)(nil)

// NewRules wraps set.
func NewRules(set *sigma.Set) *Rules {
	r := &Rules{set: set, rules: make(map[*sigma.Rule]*sink.AlertRule, len(set.Rules()))}
	for _, rule := range set.Rules() {
		r.rules[rule] = &sink.AlertRule{
			ID: rule.ID, Title: rule.Title, Level: rule.Level, Author: rule.Author, File: rule.File,
			Tags: append([]string{}, rule.Tags...),
		}
	}
	return r
}

// Set returns the rule set.
func (r *Rules) Set() *sigma.Set { return r.set }

// Match evaluates the rules on one event. It allocates only when a rule
// matches.
func (r *Rules) Match(e *cloudtrail.Event) []*sink.AlertRule {
	ms := r.set.MatchEvent(e)
	if len(ms) == 0 {
		return nil
	}
	out := make([]*sink.AlertRule, len(ms))
	for i, m := range ms {
		out[i] = r.rules[m.Rule]
	}
	return out
}
