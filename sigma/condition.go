package sigma

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// expr is a node of a compiled condition.
type expr struct {
	op   uint8
	args []*expr
	sel  *selection
}

// Operators of a condition.
const (
	opSel = iota
	opAnd
	opOr
	opNot
)

func (x *expr) eval(e *evaluation) bool {
	switch x.op {
	case opSel:
		return x.sel.eval(e)
	case opAnd:
		for _, a := range x.args {
			if !a.eval(e) {
				return false
			}
		}
		return true
	case opOr:
		for _, a := range x.args {
			if a.eval(e) {
				return true
			}
		}
		return false
	default:
		return !x.args[0].eval(e)
	}
}

// parseCondition parses a condition of the rules specification:
// identifiers, and, or, not, parentheses, "1 of pattern", "all of
// pattern", "1 of them", "all of them" ("any of" is read as "1 of", as in
// pySigma). Precedence from loosest to tightest: or, and, not, x of,
// parentheses. Keywords are lower case, as pySigma reads them. A pattern
// is matched against the whole identifier with * for any run of
// characters; identifiers that begin with _ are left out of them and of
// patterns that do not themselves begin with _. A pattern that names no
// identifier, an undefined identifier, and the pipe of the deprecated
// aggregations are errors: a rule with them would not do what it says.
func parseCondition(cond string, sels map[string]*selection) (*expr, error) {
	if strings.Contains(cond, "|") {
		return nil, fmt.Errorf("condition %q: aggregations (| count() ...) are deprecated and replaced by correlation rules, which pgtrail does not evaluate", cond)
	}
	p := &condParser{toks: tokenize(cond), sels: sels, cond: cond}
	if len(p.toks) == 0 {
		return nil, fmt.Errorf("condition is empty")
	}
	x, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		t := p.toks[p.i]
		if isKeyword(strings.ToLower(t)) {
			return nil, p.errorf("%q: condition keywords are lower case", t)
		}
		return nil, p.errorf("unexpected %q", t)
	}
	return x, nil
}

func isKeyword(t string) bool {
	return t == "and" || t == "or" || t == "not" || t == "of" || t == "them"
}

type condParser struct {
	toks []string
	i    int
	sels map[string]*selection
	cond string
}

func (p *condParser) errorf(format string, args ...any) error {
	return fmt.Errorf("condition %q: %s", p.cond, fmt.Sprintf(format, args...))
}

func (p *condParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *condParser) or() (*expr, error) {
	x, err := p.and()
	if err != nil {
		return nil, err
	}
	args := []*expr{x}
	for p.peek() == "or" {
		p.i++
		y, err := p.and()
		if err != nil {
			return nil, err
		}
		args = append(args, y)
	}
	if len(args) == 1 {
		return x, nil
	}
	return &expr{op: opOr, args: args}, nil
}

func (p *condParser) and() (*expr, error) {
	x, err := p.not()
	if err != nil {
		return nil, err
	}
	args := []*expr{x}
	for p.peek() == "and" {
		p.i++
		y, err := p.not()
		if err != nil {
			return nil, err
		}
		args = append(args, y)
	}
	if len(args) == 1 {
		return x, nil
	}
	return &expr{op: opAnd, args: args}, nil
}

func (p *condParser) not() (*expr, error) {
	if p.peek() == "not" {
		p.i++
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return &expr{op: opNot, args: []*expr{x}}, nil
	}
	return p.operand()
}

func (p *condParser) operand() (*expr, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, p.errorf("ends too early")
	case t == "(":
		p.i++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, p.errorf("missing )")
		}
		p.i++
		return x, nil
	case (t == "1" || t == "any" || t == "all") && p.i+1 < len(p.toks) && p.toks[p.i+1] == "of":
		if p.i+2 >= len(p.toks) {
			return nil, p.errorf("%s of what?", t)
		}
		pat := p.toks[p.i+2]
		p.i += 3
		return p.quantified(t, pat)
	case t == ")" || t == "and" || t == "or" || t == "of":
		return nil, p.errorf("unexpected %q", t)
	}
	p.i++
	if strings.Contains(t, "*") {
		return nil, p.errorf("a pattern such as %q needs 1 of or all of before it", t)
	}
	s, ok := p.sels[t]
	if !ok {
		if isKeyword(strings.ToLower(t)) {
			return nil, p.errorf("%q: condition keywords are lower case", t)
		}
		return nil, p.errorf("search identifier %q is not defined", t)
	}
	return &expr{op: opSel, sel: s}, nil
}

// quantified expands "1 of pat" or "all of pat" into an OR or an AND of
// the identifiers pat names, in name order.
func (p *condParser) quantified(q, pat string) (*expr, error) {
	var names []string
	for name := range p.sels {
		if strings.HasPrefix(name, "_") && !strings.HasPrefix(pat, "_") {
			continue
		}
		if pat == "them" {
			names = append(names, name)
			continue
		}
		if ok, err := path.Match(globToPathPattern(pat), name); err != nil {
			return nil, p.errorf("bad pattern %q", pat)
		} else if ok {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, p.errorf("%s of %s names no search identifier", q, pat)
	}
	sort.Strings(names)
	x := &expr{op: opOr}
	if q == "all" {
		x.op = opAnd
	}
	for _, name := range names {
		x.args = append(x.args, &expr{op: opSel, sel: p.sels[name]})
	}
	if len(x.args) == 1 {
		return x.args[0], nil
	}
	return x, nil
}

// globToPathPattern escapes what path.Match would read specially in a
// search identifier pattern, except *.
func globToPathPattern(pat string) string {
	r := strings.NewReplacer(`\`, `\\`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(pat)
}

// tokenize splits a condition into parentheses and words.
func tokenize(s string) []string {
	var toks []string
	cur := strings.Builder{}
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r == '(' || r == ')':
			flush()
			toks = append(toks, string(r))
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return toks
}
