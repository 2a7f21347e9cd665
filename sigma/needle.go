package sigma

import (
	"bytes"
	"strings"
)

// Needles are the second prefilter, for the rules that the eventName
// prefilter cannot skip because they name no eventName: the built-in
// pack's root-account rule (userIdentity.type: Root) and unauthorized-calls
// rule (errorCode|startswith: AccessDenied), evaluated on every event.
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

// fieldNeedle is a needle: a member whose key ends with key and whose
// value one of alts matches.
type fieldNeedle struct {
	key  string
	rare int // index in key of its rarest byte
	alts []*pattern
	id   int // index in the Set's needle states
}

// needleSet is a rule's needles: at least one must be found for the rule
// to match. nil means the rule has none (it may match anything).
type needleSet []*fieldNeedle

// ruleNeedles returns the needles of the condition x, or nil.
func ruleNeedles(x *expr) needleSet {
	switch x.op {
	case opSel:
		var all needleSet
		for _, clause := range x.sel.clauses {
			var n *fieldNeedle
			for _, it := range clause {
				if n = itemNeedle(it); n != nil {
					break // one item of the clause is enough
				}
			}
			if n == nil {
				return nil // this clause may match without any needle
			}
			all = addNeedle(all, n)
		}
		return all
	case opAnd:
		for _, a := range x.args {
			if ns := ruleNeedles(a); ns != nil {
				return ns
			}
		}
		return nil
	case opOr:
		var all needleSet
		for _, a := range x.args {
			ns := ruleNeedles(a)
			if ns == nil {
				return nil
			}
			for _, n := range ns {
				all = addNeedle(all, n)
			}
		}
		return all
	}
	return nil // not: true on records that hold nothing in particular
}

// addNeedle adds n to ns, merging it with a needle of the same key: one
// pass finds both (errorCode ending in UnauthorizedOperation, or
// beginning with AccessDenied).
func addNeedle(ns needleSet, n *fieldNeedle) needleSet {
	for i, m := range ns {
		if m.key == n.key {
			merged := *m
			merged.alts = append(append([]*pattern{}, m.alts...), n.alts...)
			ns[i] = &merged
			return ns
		}
	}
	return append(ns, n)
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
	n := &fieldNeedle{key: key, rare: rarest(key)}
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

// in reports whether b may hold the needle's member: a key ending in
// n.key whose value is not a plain string, or is one that an alternative
// matches.
func (n *fieldNeedle) in(b []byte) bool {
	c := n.key[n.rare]
	for at := n.rare; at < len(b); {
		i := bytes.IndexByte(b[at:], c)
		if i < 0 {
			return false
		}
		start := at + i - n.rare
		end := start + len(n.key)
		at += i + 1
		if start < 1 || end >= len(b) || b[end] != '"' || string(b[start:end]) != n.key ||
			(b[start-1] != '"' && b[start-1] != '.') {
			continue
		}
		j := skipSpace(b, end+1)
		if j >= len(b) || b[j] != ':' {
			continue // a value, not a key
		}
		j = skipSpace(b, j+1)
		if j >= len(b) {
			return false
		}
		if b[j] != '"' {
			return true // a number, an array, an object: left to the rule
		}
		e, esc := skipStringEsc(b, j)
		if e < 0 || esc {
			return true
		}
		text := bytesString(b[j+1 : e-1])
		for _, p := range n.alts {
			if p.match(text) {
				return true
			}
		}
	}
	return false
}
