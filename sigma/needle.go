package sigma

import (
	"bytes"
	"strings"
)

// Needles are the second prefilter, for the rules that the eventName
// prefilter cannot skip because they name no eventName: the built-in
// pack's root-account rule (userIdentity.type: Root) and unauthorized-calls
// rule (errorCode|startswith: AccessDenied), SigmaHQ's AssumeRole-misuse
// rule (userIdentity.type: AssumedRole), evaluated on every event.
// Evaluating them means reading the record's structure as far as the
// field, which on records whose keys are sorted (userIdentity last) is the
// whole record. A needle is what such a rule needs the record to hold:
// somewhere in it, a member whose key ends the field's path and whose
// string value the rule's value matches. It is looked for without reading
// the structure: the key's rarest byte is found with the vectorized
// IndexByte, and only where the key's text is, the value after it is
// matched, by the rule's own matcher. Most records hold no errorCode at
// all, and their "type" members say IAMUser or AssumedRole.
//
// Found anywhere, not only at the field's path, the member is evidence
// enough to evaluate the rule; not found, the rule cannot match:
//   - a key occurs verbatim in the record when the record has no \u escape
//     (needles are not used otherwise) and the key has none of the
//     characters JSON escapes otherwise (" \ / and controls);
//   - the key of the member that holds the path's last segment ends with
//     that segment, after a quote or, for a key that holds dots itself
//     (userIdentity.type as one key), a dot;
//   - a string value without escapes is its own text; any other value (an
//     escaped string, a number, an array, an object) is left to the rule.
//
// A rule's needles are groups, of which the record must hold one whole: a
// clause (an AND of items) needs the needle of each of its items that has
// one (userIdentity.type: AssumedRole and
// userIdentity.sessionContext.sessionIssuer.type: Role), and an OR of
// clauses needs one clause's. The needles of all rules with the same key
// are looked for in one search per record (needleKey), which settles them
// all: the built-in root rule and the AssumeRole rule search "type" once.

// fieldNeedle is a needle: a member whose key ends with key and whose
// value one of alts matches.
type fieldNeedle struct {
	key  string
	path *fieldPath // the item's
	rare int        // index in key of its rarest byte
	alts []*pattern
	id   int        // index in the Set's needle states
	k    *needleKey // the Set's search for key
}

// needleKey is the search for the members with one key, for all the
// needles of a Set with that key.
type needleKey struct {
	key     string
	rare    int
	needles []*fieldNeedle
	// paths has a path of the needles' for each first segment they
	// begin with: the top-level members that can hold a needle's member
	// are those whose keys begin one (top.go).
	paths []*fieldPath
}

// needleSet is a rule's needles: an OR of groups, each the AND of its
// needles. nil means the rule has none (it may match anything).
type needleSet [][]*fieldNeedle

// maxNeedleGroups bounds the groups an AND of conditions multiplies into.
const maxNeedleGroups = 8

// ruleNeedles returns the needles of the condition x, or nil.
func ruleNeedles(x *expr) needleSet {
	switch x.op {
	case opSel:
		var all needleSet
		for _, clause := range x.sel.clauses {
			var group []*fieldNeedle
			for _, it := range clause {
				if n := itemNeedle(it); n != nil {
					group = append(group, n)
				}
			}
			if group == nil {
				return nil // this clause may match without any needle
			}
			all = addGroup(all, group)
		}
		return all
	case opAnd:
		// Each argument's needles are needed: the product of their
		// groups, as long as it stays small.
		var all needleSet
		for _, a := range x.args {
			ns := ruleNeedles(a)
			switch {
			case ns == nil:
			case all == nil:
				all = ns
			case len(all)*len(ns) <= maxNeedleGroups:
				var prod needleSet
				for _, g := range all {
					for _, h := range ns {
						prod = append(prod, append(append([]*fieldNeedle{}, g...), h...))
					}
				}
				all = prod
			}
		}
		return all
	case opOr:
		var all needleSet
		for _, a := range x.args {
			ns := ruleNeedles(a)
			if ns == nil {
				return nil
			}
			for _, g := range ns {
				all = addGroup(all, g)
			}
		}
		return all
	}
	return nil // not: true on records that hold nothing in particular
}

// addGroup adds the group g to ns. A group of one needle is merged with
// another such group of the same key: one needle finds either
// (errorCode ending in UnauthorizedOperation, or beginning with
// AccessDenied).
func addGroup(ns needleSet, g []*fieldNeedle) needleSet {
	if len(g) == 1 {
		n := g[0]
		for i, h := range ns {
			if len(h) == 1 && h[0].key == n.key {
				merged := *h[0]
				merged.alts = append(append([]*pattern{}, h[0].alts...), n.alts...)
				ns[i] = []*fieldNeedle{&merged}
				return ns
			}
		}
	}
	return append(ns, g)
}

// itemNeedle returns the needle of one item, or nil: keyword searches,
// negations, exists, null, field references and values other than Sigma
// strings have none.
func itemNeedle(it *item) *fieldNeedle {
	if it.field == "" || it.neg || it.exists != 0 || len(it.values) == 0 {
		return nil
	}
	key := it.field[strings.LastIndexByte(it.field, '.')+1:]
	if key == "" || hasEscapable(key) {
		return nil
	}
	n := &fieldNeedle{key: key, path: it.path, rare: rarest(key)}
	for _, v := range it.values {
		if v.null || v.ref != nil || len(v.alts) == 0 {
			return nil
		}
		for _, m := range v.alts {
			sm, ok := m.(strMatcher)
			if !ok {
				return nil
			}
			n.alts = append(n.alts, sm.p)
		}
	}
	return n
}

// hasEscapable reports whether JSON may write s otherwise than verbatim
// without \u escapes.
func hasEscapable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '/' {
			return true
		}
	}
	return false
}

// matches reports whether an alternative of n matches the text of a
// plain string value; *ascii is as for pattern.matchText.
func (n *fieldNeedle) matches(text string, ascii *uint8) bool {
	for _, p := range n.alts {
		if p.matchText(text, ascii) {
			return true
		}
	}
	return false
}

// in reports whether b may hold the needle's member: a key ending in
// n.key whose value is not a plain string, or is one that an alternative
// matches.
func (n *fieldNeedle) in(b []byte) bool {
	found := false
	eachMember(b, n.key, n.rare, func(text string, plain bool) bool {
		var ascii uint8
		found = !plain || n.matches(text, &ascii)
		return found
	})
	return found
}

// find settles the state of each of k's needles for the record b, in
// states (by needle id): 2 if the needle may be in b, 1 if not.
func (k *needleKey) find(b []byte, states []uint8) {
	k.start(states)
	left := len(k.needles)
	k.search(b, states, &left)
}

func (k *needleKey) start(states []uint8) {
	for _, n := range k.needles {
		states[n.id] = 1
	}
}

// search settles the needles found in b; it reports whether none is left.
func (k *needleKey) search(b []byte, states []uint8, left *int) bool {
	eachMember(b, k.key, k.rare, func(text string, plain bool) bool {
		var ascii uint8
		for _, n := range k.needles {
			if states[n.id] == 1 && (!plain || n.matches(text, &ascii)) {
				states[n.id] = 2
				*left--
			}
		}
		return *left == 0
	})
	return *left == 0
}

// eachMember calls f with the value of each member of b whose key ends
// with key (rare is the index in key of its rarest byte), in record order,
// until f returns true: with the text of a plain string (plain), or with
// plain false for any other value (a number, an array, an object, an
// escaped string). It stops at a key with no value after it.
func eachMember(b []byte, key string, rare int, f func(text string, plain bool) bool) {
	c := key[rare]
	for at := rare; at < len(b); {
		i := bytes.IndexByte(b[at:], c)
		if i < 0 {
			return
		}
		start := at + i - rare
		end := start + len(key)
		at += i + 1
		if start < 1 || end >= len(b) || b[end] != '"' || string(b[start:end]) != key ||
			(b[start-1] != '"' && b[start-1] != '.') {
			continue
		}
		j := skipSpace(b, end+1)
		if j >= len(b) || b[j] != ':' {
			continue // a value, not a key
		}
		j = skipSpace(b, j+1)
		if j >= len(b) {
			return
		}
		if b[j] != '"' {
			if f("", false) { // a number, an array, an object: left to the rule
				return
			}
			continue
		}
		e, esc := skipStringEsc(b, j)
		if e < 0 || esc {
			if f("", false) {
				return
			}
			continue
		}
		if f(bytesString(b[j+1:e-1]), true) {
			return
		}
	}
}
