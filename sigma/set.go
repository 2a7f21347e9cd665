package sigma

import (
	"slices"
	"strings"
	"sync"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// Set is a compiled set of rules, ready to evaluate events. It is
// immutable and safe for concurrent use.
type Set struct {
	rules   []*Rule
	refused []Refusal
	skipped []Refusal

	paths []*fieldPath // by id: every field path the rules use
	tree  *objNode     // the objects the paths go through
	nsegs int          // the number of distinct first segments of paths

	// The prefilter: rules by the lower-case eventName they need, by the
	// eventSource they need (when they need no particular eventName), and
	// the rules that need neither. Each holds rule indexes, ascending.
	byName   map[string][]int32
	bySource map[string][]int32
	always   []int32
	// needles is the number of needles of the rules (needle.go), and
	// needleKeys the searches that find them, one per key.
	needles    int
	needleKeys map[string]*needleKey

	pool sync.Pool // *evaluation
}

// Match is a rule that an event matched.
type Match struct {
	// Rule is the matched rule. Show its Author with the match: the
	// SigmaHQ rules' licence asks for it.
	Rule *Rule
}

// prefilter is what a rule needs of an event's eventSource and eventName
// to be able to match: lower-case values, nil for any.
type prefilter struct {
	names, sources []string
}

// NewSet compiles the prefilter for rules and returns them as a Set, with
// the refused and skipped rules kept for reporting. The rules must come
// from Parse; a Rule belongs to one Set.
func NewSet(rules []*Rule, refused, skipped []Refusal) *Set {
	s := &Set{
		rules: rules, refused: refused, skipped: skipped,
		byName: map[string][]int32{}, bySource: map[string][]int32{},
		needleKeys: map[string]*needleKey{},
		tree:       &objNode{},
	}
	ids, segs := map[string]int{}, map[string]int{}
	pathID := func(p *fieldPath) int {
		id, ok := ids[p.name]
		if !ok {
			id = len(s.paths)
			ids[p.name] = id
			s.paths = append(s.paths, p)
			s.tree.add(p.name)
		}
		if p.first != "" {
			seg, ok := segs[p.first]
			if !ok {
				seg = len(segs)
				segs[p.first] = seg
			}
			p.seg = seg
			p.key = memberKeyID(p.first)
		}
		return id
	}
	for i, r := range rules {
		r.pos = i
		for _, sel := range r.sels {
			for _, clause := range sel.clauses {
				for _, it := range clause {
					if it.path != nil {
						it.id = pathID(it.path)
					}
					for _, v := range it.values {
						if v.ref != nil {
							v.ref.id = pathID(v.ref.path)
						}
					}
				}
				// Cheap tests first: the fields the prefilter already
				// vouched for, then the rest in the rule's order.
				slices.SortStableFunc(clause, func(a, b *item) int { return itemCost(a) - itemCost(b) })
			}
		}
		r.index = prefilter{names: constraint(r.cond, "eventName"), sources: constraint(r.cond, "eventSource")}
		if r.index.names == nil {
			r.needles = ruleNeedles(r.cond)
			for _, g := range r.needles {
				for _, n := range g {
					s.addNeedle(n)
				}
			}
		}
		switch {
		case r.index.names != nil:
			for _, n := range r.index.names {
				s.byName[n] = append(s.byName[n], int32(i))
			}
		case r.index.sources != nil:
			for _, src := range r.index.sources {
				s.bySource[src] = append(s.bySource[src], int32(i))
			}
		default:
			s.always = append(s.always, int32(i))
		}
	}
	s.nsegs = len(segs)
	s.pool.New = func() any { return new(evaluation) }
	return s
}

// addNeedle gives n its state id and the search for its key.
func (s *Set) addNeedle(n *fieldNeedle) {
	if n.k != nil {
		return // in several groups
	}
	n.id = s.needles
	s.needles++
	k := s.needleKeys[n.key]
	if k == nil {
		k = &needleKey{key: n.key, rare: n.rare}
		s.needleKeys[n.key] = k
	}
	k.needles = append(k.needles, n)
	if !slices.ContainsFunc(k.paths, func(p *fieldPath) bool { return p.first == n.path.first }) {
		k.paths = append(k.paths, n.path)
	}
	n.k = k
}

// itemCost orders a clause's items: eventName and eventSource first, other
// fields next, keyword searches (the whole record) last.
func itemCost(it *item) int {
	switch it.field {
	case "eventName", "eventSource":
		return 0
	case "":
		return 2
	}
	return 1
}

// Prefilter returns the eventSource and eventName values (in lower case)
// that an event needs for the rule to be evaluated on it, nil for any. A
// rule with neither is evaluated on every event: rules list can show that
// as its cost. It is known once the rule is in a Set.
func (r *Rule) Prefilter() (sources, names []string) {
	return r.index.sources, r.index.names
}

// Rules returns the set's rules, in load order.
func (s *Set) Rules() []*Rule { return s.rules }

// Refused returns the rules (and files) for CloudTrail that could not be
// loaded, each with the file and the construct that was refused.
func (s *Set) Refused() []Refusal { return s.refused }

// Skipped returns the rules that were not loaded because their logsource
// is not CloudTrail's.
func (s *Set) Skipped() []Refusal { return s.skipped }

// Match evaluates the rules on one event and returns those that match, in
// the set's order; nil if none does (the common case allocates nothing).
//
// record is the event's CloudTrail record, JSON; every field a rule names
// is read from it. source and name are the event's eventSource and
// eventName as pgtrail normalizes them (for Insight records, those of
// insightDetails): they only let Match skip the rules that need another
// eventSource or eventName, and the record is read no further than the
// remaining rules need. record must not change during the call; Match
// keeps no reference to it.
func (s *Set) Match(source, name string, record []byte) []Match {
	return s.match(source, name, record, nil)
}

// MatchEvent is Match for an event that cloudtrail.Normalize made: it
// starts from the record's top-level members as Normalize found them
// (e.Layout), rather than reading the record's top level again (top.go).
func (s *Set) MatchEvent(e *cloudtrail.Event) []Match {
	return s.match(e.EventSource, e.EventName, e.Record, &e.Layout)
}

func (s *Set) match(source, name string, record []byte, layout *cloudtrail.Layout) []Match {
	var lower [2][64]byte
	nameKey, nameOK := lowerKey(lower[0][:0], name)
	srcKey, srcOK := lowerKey(lower[1][:0], source)
	var byName, bySource []int32
	if nameOK {
		byName = s.byName[string(nameKey)]
	}
	if srcOK {
		bySource = s.bySource[string(srcKey)]
	}
	if len(byName) == 0 && len(bySource) == 0 && len(s.always) == 0 && nameOK && srcOK {
		return nil
	}
	e := s.pool.Get().(*evaluation)
	e.rec.reset(record, len(s.paths), s.nsegs)
	e.rec.tree = s.tree
	if layout != nil {
		e.rec.useLayout(layout)
	}
	e.text = bytesString(record)
	e.resetNeedles(s.needles)
	var out []Match
	if !nameOK || !srcOK {
		// Names beyond ASCII: lower-casing may not agree with the
		// case folding of the match, so no rule is skipped.
		for i := range s.rules {
			out = s.try(out, e, int32(i), "", false)
		}
	} else {
		// The rules that every event is a candidate for first: on the
		// records that pass their needles they read userIdentity as
		// objects, which the others would have skipped on their way to
		// eventName (the order of the matches is the set's, whatever the
		// order of evaluation).
		out = s.tryAll(out, e, s.always, "", false)
		out = s.tryAll(out, e, byName, bytesString(srcKey), true)
		out = s.tryAll(out, e, bySource, "", false)
		if len(out) > 1 {
			slices.SortFunc(out, func(a, b Match) int { return a.Rule.pos - b.Rule.pos })
		}
	}
	e.rec.raw, e.text = nil, ""
	s.pool.Put(e)
	return out
}

// tryAll evaluates the rules at idx; srcKey, when bySrc, is the event's
// lower-case eventSource, which a rule's own sources must then include.
func (s *Set) tryAll(out []Match, e *evaluation, idx []int32, srcKey string, bySrc bool) []Match {
	for _, i := range idx {
		out = s.try(out, e, i, srcKey, bySrc)
	}
	return out
}

func (s *Set) try(out []Match, e *evaluation, i int32, srcKey string, bySrc bool) []Match {
	r := s.rules[i]
	if bySrc && r.index.sources != nil && !slices.Contains(r.index.sources, srcKey) {
		return out
	}
	if r.needles != nil && !e.anyNeedle(r.needles) {
		return out
	}
	if r.cond.eval(e) {
		out = append(out, Match{Rule: r})
	}
	return out
}

// lowerKey returns s in lower case, in buf's array when it fits; ok is
// false if s is not ASCII.
func lowerKey(buf []byte, s string) ([]byte, bool) {
	if len(s) > cap(buf) {
		buf = make([]byte, len(s))
	}
	buf = buf[:len(s)]
	for i := range buf {
		c := s[i]
		if c >= 0x80 {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf, true
}

// constraint returns the lower-case values that field must have for x to
// be true, or nil if x can be true whatever the field holds (or if the
// values cannot be listed: wildcards, modifiers, text beyond ASCII).
func constraint(x *expr, field string) []string {
	switch x.op {
	case opSel:
		var all []string
		for _, clause := range x.sel.clauses {
			var c []string
			for _, it := range clause {
				if v := itemConstraint(it, field); v != nil {
					c = intersect(c, v)
				}
			}
			if c == nil {
				return nil // this clause allows any value
			}
			all = union(all, c)
		}
		return all
	case opAnd:
		var c []string
		for _, a := range x.args {
			if v := constraint(a, field); v != nil {
				c = intersect(c, v)
			}
		}
		return c
	case opOr:
		var all []string
		for _, a := range x.args {
			v := constraint(a, field)
			if v == nil {
				return nil
			}
			all = union(all, v)
		}
		return all
	}
	return nil // not: anything but some values
}

// itemConstraint returns the lower-case values an item allows field to
// have, or nil if it does not restrict it to a list of plain values.
func itemConstraint(it *item, field string) []string {
	if it.field != field || it.neg || it.exists != 0 || len(it.values) == 0 {
		return nil
	}
	if it.all && len(it.values) > 1 {
		return nil // AND of different values: leave it to the match
	}
	var out []string
	for _, v := range it.values {
		if v.null || v.ref != nil {
			return nil
		}
		for _, m := range v.alts {
			sm, ok := m.(strMatcher)
			if !ok || !sm.p.ascii || len(sm.p.segs) != 1 || !sm.p.anchorStart || !sm.p.anchorEnd {
				return nil
			}
			out = append(out, strings.ToLower(sm.p.segs[0]))
		}
	}
	return union(nil, out)
}

// intersect returns the values in both a and b; a nil a means any value.
// An empty result is not nil: no value.
func intersect(a, b []string) []string {
	if a == nil {
		return b
	}
	out := []string{}
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// union returns the values in a or b, sorted and without duplicates.
func union(a, b []string) []string {
	out := append(append([]string{}, a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
