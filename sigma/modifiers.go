package sigma

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The value modifiers of the specification (modifiers appendix v2.1),
// applied in the order the rule gives them, each to every value, as pySigma
// applies them. A modifier that cannot apply to a value, an unknown one,
// or one whose result could not match a JSON record refuses the rule.

// Kinds of a value while its modifiers are applied.
const (
	vString    = iota // text with wildcards
	vNumber           // a YAML number
	vBool             // a YAML boolean
	vNull             // null
	vBinary           // bytes of a utf16 modifier, waiting for base64
	vRegexp           // re
	vCIDR             // cidr
	vCompare          // lt, lte, gt, gte
	vFieldRef         // fieldref
	vExists           // exists
	vTime             // minute, hour, day, week, month, year
	vExpansion        // several values of which any may match (windash, base64offset)
)

// ruleValue is one value of a detection item while modifiers apply to it.
type ruleValue struct {
	kind  int
	orig  string // the value as the rule writes it
	s     sigmaString
	cased bool
	bin   []byte
	num   float64
	flags string // the regular expression's flags: some of i, m, s
	pfx   netip.Prefix
	op    int
	ref   *fieldRef
	part  int
	b     bool
	alts  []ruleValue
}

// kindName names a value's kind in messages.
func (v *ruleValue) kindName() string {
	return [...]string{"a string", "a number", "a boolean", "null", "UTF-16 bytes", "a regular expression",
		"a CIDR network", "a numeric comparison", "a field reference", "an exists test", "a time part",
		"an expansion"}[v.kind]
}

// itemState is what the list modifiers (all, neq) set on an item.
type itemState struct {
	all, neg bool
	keyword  bool // the item has no field
}

// knownModifiers lists the modifiers pgtrail evaluates (and expand, which
// it refuses with its own reason).
var knownModifiers = map[string]bool{
	"contains": true, "startswith": true, "endswith": true, "all": true, "neq": true,
	"base64": true, "base64offset": true, "utf16le": true, "utf16be": true, "utf16": true, "wide": true,
	"windash": true, "re": true, "i": true, "m": true, "s": true, "ignorecase": true, "multiline": true,
	"dotall": true, "cased": true, "cidr": true, "exists": true, "fieldref": true, "expand": true,
	"lt": true, "lte": true, "gt": true, "gte": true,
	"minute": true, "hour": true, "day": true, "week": true, "month": true, "year": true,
}

// applyModifier applies the modifier mod to v. applied counts the value
// modifiers applied before it.
func applyModifier(mod string, v ruleValue, st *itemState, applied int) (ruleValue, error) {
	if v.kind == vExpansion && mod != "all" && mod != "neq" {
		for i := range v.alts {
			a, err := applyModifier(mod, v.alts[i], st, applied)
			if err != nil {
				return v, err
			}
			v.alts[i] = a
		}
		return flatten(v), nil
	}
	wrong := func() (ruleValue, error) {
		return v, fmt.Errorf("modifier %s does not apply to %s", mod, v.kindName())
	}
	switch mod {
	case "all":
		st.all = true
	case "neq":
		st.neg = true
	case "contains", "startswith", "endswith":
		switch v.kind {
		case vString:
			if mod != "startswith" && (len(v.s) == 0 || v.s[0] != wildMany) {
				v.s = wildManyStr + v.s
			}
			if mod != "endswith" && (len(v.s) == 0 || v.s[len(v.s)-1] != wildMany) {
				v.s += wildManyStr
			}
		case vRegexp:
			// A regular expression is searched for anywhere already:
			// pySigma only adds the .* that makes a backend do the same.
		case vFieldRef:
			switch {
			case mod == "contains", v.ref.mode == refContains,
				mod == "startswith" && v.ref.mode == refSuffix, mod == "endswith" && v.ref.mode == refPrefix:
				v.ref.mode = refContains
			case mod == "startswith":
				v.ref.mode = refPrefix
			default:
				v.ref.mode = refSuffix
			}
		default:
			return wrong()
		}
	case "cased":
		switch v.kind {
		case vString:
			v.cased = true
		case vFieldRef:
			v.ref.cased = true
		default:
			return wrong()
		}
	case "base64", "base64offset":
		var data []byte
		switch v.kind {
		case vString:
			if v.s.hasWildcards() {
				return v, fmt.Errorf("modifier %s: the value %q has wildcards, which cannot be encoded", mod, v.orig)
			}
			data = []byte(v.s)
		case vBinary:
			data = v.bin
		default:
			return wrong()
		}
		if mod == "base64" {
			return ruleValue{kind: vString, orig: v.orig, s: plainSigmaString(base64.StdEncoding.EncodeToString(data))}, nil
		}
		return base64Offsets(v.orig, data), nil
	case "utf16le", "wide", "utf16be", "utf16":
		if v.kind != vString {
			return wrong()
		}
		if v.s.hasWildcards() {
			return v, fmt.Errorf("modifier %s: the value %q has wildcards, which cannot be encoded", mod, v.orig)
		}
		return ruleValue{kind: vBinary, orig: v.orig, bin: encodeUTF16(string(v.s), mod)}, nil
	case "windash":
		if v.kind != vString {
			return wrong()
		}
		return windash(v), nil
	case "re":
		if v.kind != vString || applied > 0 {
			return v, fmt.Errorf("modifier re applies only to a plain string, before any other modifier")
		}
		return ruleValue{kind: vRegexp, orig: v.orig}, nil
	case "i", "ignorecase", "m", "multiline", "s", "dotall":
		if v.kind != vRegexp {
			return v, fmt.Errorf("modifier %s is a flag of re and must follow it", mod)
		}
		v.flags += mod[:1]
	case "cidr":
		if v.kind != vString || applied > 0 {
			return v, fmt.Errorf("modifier cidr applies only to a plain string, before any other modifier")
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(v.orig))
		if err != nil {
			return v, fmt.Errorf("modifier cidr: %q is not a network in CIDR notation", v.orig)
		}
		return ruleValue{kind: vCIDR, orig: v.orig, pfx: p.Masked()}, nil
	case "exists":
		if v.kind != vBool || applied > 0 {
			return v, fmt.Errorf("modifier exists takes true or false, and no other modifier before it")
		}
		if st.keyword {
			return v, fmt.Errorf("modifier exists needs a field")
		}
		return ruleValue{kind: vExists, orig: v.orig, b: v.b}, nil
	case "fieldref":
		if v.kind != vString || v.s.hasWildcards() {
			return v, fmt.Errorf("modifier fieldref takes a field name without wildcards")
		}
		if st.keyword {
			return v, fmt.Errorf("modifier fieldref needs a field")
		}
		return ruleValue{kind: vFieldRef, orig: v.orig, ref: &fieldRef{path: newFieldPath(strings.TrimSpace(v.orig))}}, nil
	case "lt", "lte", "gt", "gte":
		if v.kind != vNumber {
			return v, fmt.Errorf("modifier %s takes a number, not %s", mod, v.kindName())
		}
		op := map[string]int{"lt": opLT, "lte": opLTE, "gt": opGT, "gte": opGTE}[mod]
		return ruleValue{kind: vCompare, orig: v.orig, op: op, num: v.num}, nil
	case "minute", "hour", "day", "week", "month", "year":
		if v.kind != vNumber || v.num != float64(int(v.num)) {
			return v, fmt.Errorf("modifier %s takes a whole number", mod)
		}
		return ruleValue{kind: vTime, orig: v.orig, part: timeParts[mod], num: v.num}, nil
	case "expand":
		return v, fmt.Errorf("modifier expand needs placeholder values, which pgtrail has no source for")
	default:
		return v, fmt.Errorf("unknown modifier %q", mod)
	}
	return v, nil
}

// flatten lifts the alternatives of nested expansions into v.
func flatten(v ruleValue) ruleValue {
	var alts []ruleValue
	for _, a := range v.alts {
		if a.kind == vExpansion {
			alts = append(alts, flatten(a).alts...)
		} else {
			alts = append(alts, a)
		}
	}
	v.alts = alts
	return v
}

// base64Offsets is the base64offset modifier: the three encodings of data
// at the three offsets it can have inside a longer encoded text, cut to
// the characters that do not depend on its neighbours (pySigma's
// SigmaBase64OffsetModifier).
func base64Offsets(orig string, data []byte) ruleValue {
	start := [3]int{0, 2, 3}
	end := [3]int{0, -3, -2} // 0: to the end
	v := ruleValue{kind: vExpansion, orig: orig}
	for i := 0; i < 3; i++ {
		// The i bytes before data are spaces, as in pySigma; what encodes
		// them is cut away.
		enc := base64.StdEncoding.EncodeToString(append([]byte(strings.Repeat(" ", i)), data...))
		e := end[(len(data)+i)%3]
		hi := len(enc)
		if e < 0 {
			hi += e
		}
		if start[i] > hi {
			continue
		}
		v.alts = append(v.alts, ruleValue{kind: vString, orig: orig, s: plainSigmaString(enc[start[i]:hi])})
	}
	return v
}

// encodeUTF16 encodes s as the utf16 modifiers do: utf16le (wide) and
// utf16be without a byte order mark, utf16 little-endian after one.
func encodeUTF16(s, mod string) []byte {
	var out []byte
	if mod == "utf16" {
		out = append(out, 0xFF, 0xFE)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if mod == "utf16be" {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

// windashChars are the characters windash makes interchangeable.
var windashChars = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

// windash expands every - or / that begins a word after a non-word
// character (pySigma's \B[-/]\b) into each of windashChars, giving every
// combination.
func windash(v ruleValue) ruleValue {
	s := string(v.s)
	var at []int
	for i := 0; i < len(s); i++ {
		if (s[i] == '-' || s[i] == '/') && !isWordBefore(s, i) && isWordAt(s, i+1) {
			at = append(at, i)
		}
	}
	out := ruleValue{kind: vExpansion, orig: v.orig}
	if len(at) == 0 {
		out.alts = []ruleValue{v}
		return out
	}
	if len(at) > 6 { // 5^6 values already; more is a mistake, not a rule
		at = at[:6]
	}
	var build func(k int, prefix string, from int)
	build = func(k int, prefix string, from int) {
		if k == len(at) {
			a := v
			a.s = sigmaString(prefix + s[from:])
			out.alts = append(out.alts, a)
			return
		}
		for _, c := range windashChars {
			build(k+1, prefix+s[from:at[k]]+c, at[k]+1)
		}
	}
	build(0, "", 0)
	return out
}

// isWordBefore reports whether the character before s[i] is a word
// character (regular expression \w: ASCII letters, digits, underscore).
func isWordBefore(s string, i int) bool {
	if i == 0 {
		return false
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return isWordRune(r)
}

func isWordAt(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return isWordRune(r)
}

func isWordRune(r rune) bool {
	return r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
}

// compileValue turns a value whose modifiers are applied into what the
// item matches with.
func compileValue(v ruleValue) (itemValue, error) {
	switch v.kind {
	case vNull:
		return itemValue{null: true}, nil
	case vFieldRef:
		return itemValue{ref: v.ref}, nil
	case vExpansion:
		var iv itemValue
		for _, a := range v.alts {
			m, err := compileMatcher(a)
			if err != nil {
				return iv, err
			}
			iv.alts = append(iv.alts, m)
		}
		return iv, nil
	}
	m, err := compileMatcher(v)
	if err != nil {
		return itemValue{}, err
	}
	return itemValue{alts: []matcher{m}}, nil
}

func compileMatcher(v ruleValue) (matcher, error) {
	switch v.kind {
	case vString:
		return strMatcher{newPattern(v.s, v.cased)}, nil
	case vNumber:
		return numMatcher{text: v.orig, f: v.num}, nil
	case vBool:
		return boolMatcher{v.b}, nil
	case vBinary:
		return nil, fmt.Errorf("value %q: UTF-16 text cannot occur in a JSON record; add base64 or base64offset after the utf16 modifier", v.orig)
	case vRegexp:
		expr := v.orig
		if v.flags != "" {
			expr = "(?" + dedupe(v.flags) + ")" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("modifier re: %q is not a regular expression pgtrail can run (RE2 syntax: no backreferences or lookaround): %v", v.orig, err)
		}
		return reMatcher{re}, nil
	case vCIDR:
		return cidrMatcher{v.pfx}, nil
	case vCompare:
		return cmpMatcher{op: v.op, f: v.num}, nil
	case vTime:
		return timeMatcher{part: v.part, n: int(v.num)}, nil
	}
	return nil, fmt.Errorf("value %q: %s cannot be matched here", v.orig, v.kindName())
}

func dedupe(flags string) string {
	var b strings.Builder
	for _, f := range "ims" {
		if strings.ContainsRune(flags, f) {
			b.WriteRune(f)
		}
	}
	return b.String()
}

// scalarValue reads a YAML scalar as a value: its tag says whether it is
// null, a boolean, a number or a string.
func scalarValue(tag, text string) ruleValue {
	switch tag {
	case "!!null":
		return ruleValue{kind: vNull, orig: text}
	case "!!bool":
		b, _ := strconv.ParseBool(strings.ToLower(text))
		return ruleValue{kind: vBool, orig: text, b: b}
	case "!!int":
		if n, err := strconv.ParseInt(strings.ReplaceAll(text, "_", ""), 0, 64); err == nil {
			return ruleValue{kind: vNumber, orig: text, num: float64(n)}
		}
	case "!!float":
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return ruleValue{kind: vNumber, orig: text, num: f}
		}
	}
	return ruleValue{kind: vString, orig: text, s: parseSigmaString(text)}
}
