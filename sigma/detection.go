package sigma

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// selection is a search identifier of a rule's detection: an OR of clauses,
// each an AND of items. A map is one clause; a list of maps is one clause
// per map; a list of plain values is a keyword search.
type selection struct {
	name    string
	clauses [][]*item
}

// item is one key of a selection map (field|modifiers: values), or a
// keyword search (no field): the values are linked with OR, or with AND
// under the all modifier; neq negates the item.
type item struct {
	field  string // "" for a keyword search
	path   *fieldPath
	id     int // the path's id in its Set
	all    bool
	neg    bool
	exists int8 // 1: exists: true, 2: exists: false, 0: not an exists test
	values []itemValue
}

// itemValue is one value of an item: null, a field reference, or
// matchers of which any may match (several after windash or base64offset).
type itemValue struct {
	null bool
	ref  *fieldRef
	alts []matcher
}

// evaluation is the state of one Match call.
type evaluation struct {
	rec record
	// text is the whole record, for keyword searches.
	text string
	// needles holds, by needle id, 1 if the needle is not in the record,
	// 2 if it may be, 0 if not looked for yet.
	needles []uint8
}

func (e *evaluation) resetNeedles(n int) {
	if cap(e.needles) < n {
		e.needles = make([]uint8, n)
	}
	e.needles = e.needles[:n]
	clear(e.needles)
}

// anyNeedle reports whether the record may hold what a rule with the
// needles ns needs: all needles of one of their groups may be in it, or
// the record has \u escapes, which needles cannot see through.
func (e *evaluation) anyNeedle(ns needleSet) bool {
	if !e.rec.noEscapes() {
		return true
	}
	for _, g := range ns {
		ok := true
		for _, n := range g {
			if e.needles[n.id] == 0 {
				if e.rec.known {
					n.k.findTop(&e.rec, e.needles)
				} else {
					n.k.find(e.rec.raw, e.needles)
				}
			}
			if e.needles[n.id] != 2 {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (s *selection) eval(e *evaluation) bool {
	for _, clause := range s.clauses {
		ok := true
		for _, it := range clause {
			if !it.eval(e) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (it *item) eval(e *evaluation) bool {
	if it.field == "" {
		return it.evalKeywords(e) != it.neg
	}
	cands, found := e.rec.lookup(it.id, it.path)
	var r bool
	if it.exists != 0 {
		r = found == (it.exists == 1)
	} else {
		r = it.all
		for i := range it.values {
			if ok := it.values[i].matchAny(cands, e); ok != it.all {
				r = ok
				break
			}
		}
	}
	return r != it.neg
}

// evalKeywords matches the values against the whole record's JSON text.
func (it *item) evalKeywords(e *evaluation) bool {
	c := cand{text: e.text, kind: kJSON}
	for i := range it.values {
		ok := false
		for _, m := range it.values[i].alts {
			if m.match(&c) {
				ok = true
				break
			}
		}
		if ok != it.all {
			return ok
		}
	}
	return it.all
}

// matchAny reports whether the value matches the field whose candidates
// are cands. null matches a field that is absent or has no value but null
// (null, an empty array); other values match if any non-null candidate
// matches: an array's elements are candidates each.
func (v *itemValue) matchAny(cands []cand, e *evaluation) bool {
	if v.null {
		for i := range cands {
			if cands[i].kind != kNull {
				return false
			}
		}
		return true
	}
	if v.ref != nil {
		refs, _ := e.rec.lookup(v.ref.id, v.ref.path)
		for i := range cands {
			if cands[i].kind == kNull {
				continue
			}
			for j := range refs {
				if refs[j].kind != kNull && v.ref.compare(cands[i].text, refs[j].text) {
					return true
				}
			}
		}
		return false
	}
	for i := range cands {
		if cands[i].kind == kNull {
			continue
		}
		for _, m := range v.alts {
			if m.match(&cands[i]) {
				return true
			}
		}
	}
	return false
}

// compileSelection compiles the YAML value of the search identifier name.
func compileSelection(name string, n *yaml.Node) (*selection, error) {
	s := &selection{name: name}
	switch n.Kind {
	case yaml.MappingNode:
		clause, err := compileMap(n)
		if err != nil {
			return nil, err
		}
		s.clauses = append(s.clauses, clause)
	case yaml.SequenceNode:
		var keywords []*yaml.Node
		for _, el := range n.Content {
			switch el.Kind {
			case yaml.MappingNode:
				clause, err := compileMap(el)
				if err != nil {
					return nil, err
				}
				s.clauses = append(s.clauses, clause)
			case yaml.ScalarNode:
				keywords = append(keywords, el)
			default:
				return nil, fmt.Errorf("line %d: a list in a search identifier holds maps or plain values, not %s", el.Line, nodeKind(el))
			}
		}
		if len(keywords) > 0 {
			it, err := compileItem("", nil, keywords, n.Line)
			if err != nil {
				return nil, err
			}
			s.clauses = append(s.clauses, []*item{it})
		}
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, fmt.Errorf("line %d: the search identifier is empty", n.Line)
		}
		it, err := compileItem("", nil, []*yaml.Node{n}, n.Line)
		if err != nil {
			return nil, err
		}
		s.clauses = append(s.clauses, []*item{it})
	default:
		return nil, fmt.Errorf("line %d: a search identifier is a map or a list, not %s", n.Line, nodeKind(n))
	}
	if len(s.clauses) == 0 {
		return nil, fmt.Errorf("line %d: the search identifier is empty", n.Line)
	}
	return s, nil
}

// compileMap compiles a selection map: the AND of its items.
func compileMap(n *yaml.Node) ([]*item, error) {
	var clause []*item
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		var vals []*yaml.Node
		switch val.Kind {
		case yaml.ScalarNode:
			vals = []*yaml.Node{val}
		case yaml.SequenceNode:
			for _, el := range val.Content {
				if el.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: %s: a value list holds plain values, not %s", el.Line, key.Value, nodeKind(el))
				}
			}
			vals = val.Content
			if len(vals) == 0 {
				return nil, fmt.Errorf("line %d: %s: the value list is empty", val.Line, key.Value)
			}
		default:
			return nil, fmt.Errorf("line %d: %s: a field's value is a plain value or a list, not %s", val.Line, key.Value, nodeKind(val))
		}
		field, mods, _ := strings.Cut(key.Value, "|")
		var modList []string
		if mods != "" || strings.Contains(key.Value, "|") {
			modList = strings.Split(mods, "|")
		}
		it, err := compileItem(strings.TrimSpace(field), modList, vals, key.Line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", key.Line, key.Value, err)
		}
		clause = append(clause, it)
	}
	if len(clause) == 0 {
		return nil, fmt.Errorf("line %d: empty selection map", n.Line)
	}
	return clause, nil
}

// compileItem compiles the values of field (empty for a keyword search)
// under the modifiers mods.
func compileItem(field string, mods []string, vals []*yaml.Node, line int) (*item, error) {
	it := &item{field: field}
	st := itemState{keyword: field == ""}
	for _, m := range mods {
		if m == "" {
			return nil, fmt.Errorf("empty modifier")
		}
	}
	for _, n := range vals {
		v := scalarValue(n.Tag, n.Value)
		if v.kind == vNull && len(mods) > 0 {
			for _, m := range mods {
				if m != "neq" && m != "all" {
					return nil, fmt.Errorf("modifier %s does not apply to null", m)
				}
			}
		}
		applied := 0
		for _, m := range mods {
			var err error
			if v, err = applyModifier(m, v, &st, applied); err != nil {
				return nil, err
			}
			if m != "all" && m != "neq" {
				applied++
			}
		}
		if st.keyword && v.kind != vString && v.kind != vRegexp && v.kind != vExpansion && v.kind != vNumber {
			return nil, fmt.Errorf("line %d: a keyword search takes strings, not %s", n.Line, v.kindName())
		}
		if v.kind == vExists {
			if len(vals) > 1 {
				return nil, fmt.Errorf("modifier exists takes one value, not a list")
			}
			it.exists = 2
			if v.b {
				it.exists = 1
			}
			continue
		}
		if st.keyword {
			v = keywordValue(v)
		}
		iv, err := compileValue(v)
		if err != nil {
			return nil, err
		}
		it.values = append(it.values, iv)
	}
	it.all, it.neg = st.all, st.neg
	if field != "" {
		it.path = newFieldPath(field)
	}
	return it, nil
}

// keywordValue makes a keyword's value match anywhere in the record's
// text, as the specification's keyword search ("across an entire event")
// and pySigma's matcher (a substring of the raw event) do.
func keywordValue(v ruleValue) ruleValue {
	switch v.kind {
	case vString:
		v, _ = applyModifier("contains", v, &itemState{}, 0)
	case vNumber:
		v = ruleValue{kind: vString, orig: v.orig, s: wildManyStr + plainSigmaString(v.orig) + wildManyStr}
	case vExpansion:
		for i := range v.alts {
			v.alts[i] = keywordValue(v.alts[i])
		}
	}
	return v
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a plain value"
}
