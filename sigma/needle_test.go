package sigma

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// unfiltered evaluates every rule of s on raw, without the eventName
// prefilter or the needles: what Match must agree with.
func unfiltered(s *Set, raw []byte) []*Rule {
	e := new(evaluation)
	e.rec.reset(raw, len(s.paths), s.nsegs)
	e.text = bytesString(raw)
	var out []*Rule
	for _, r := range s.rules {
		if r.cond.eval(e) {
			out = append(out, r)
		}
	}
	return out
}

// TestPrefiltersAgree checks that the prefilters (eventName, needles)
// never lose a match, on the corpus's records and on copies changed where
// needles could go wrong: values in another case or escaped, keys escaped,
// a field written as one dotted key, values in arrays, text beyond ASCII.
func TestPrefiltersAgree(t *testing.T) {
	s, err := Load(BuiltinWord + "," + sharedDir(t, "sigma/cloudtrail"))
	if err != nil {
		t.Fatal(err)
	}
	withNeedles := 0
	for _, r := range s.rules {
		if r.needles != nil {
			withNeedles++
		}
	}
	if withNeedles < 2 {
		t.Fatalf("%d rules have needles; the built-in root and unauthorized-calls rules should", withNeedles)
	}
	repl := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(old), []byte(new)) }
	}
	variants := []func([]byte) []byte{
		func(b []byte) []byte { return b },
		bytes.ToUpper,
		repl(`"Root"`, `"rOOT"`),
		repl(`"Root"`, `"\u0052oot"`),
		repl(`"Root"`, `["IAMUser", "ROOT"]`),
		repl(`"type":"Root"`, `"type" : "Root"`),
		repl(`"type":"Root"`, `"t\u0079pe":"Root"`),
		repl(`"userIdentity":{"type":"Root",`, `"userIdentity.type":"Root","userIdentity":{`),
		repl(`"errorCode":"AccessDenied"`, `"errorCode":"Acce\u017fsDenied"`),
		repl(`"errorCode":"AccessDenied"`, "\"errorCode\":\"Acce\u017fsDenied\""),
		repl(`"errorCode":"AccessDenied"`, `"errorCode":"Access\"Denied"`),
		repl(`"errorCode":"`, `"errorCode":"Client.`),
		// The AssumeRole rule's group of two needles, each lost or found
		// in another way.
		repl(`"type":"Role"`, `"type":"rOLE"`),
		repl(`"type":"Role"`, `"type":"R\u006fle"`),
		repl(`"type":"Role"`, `"type":["Group","Role"]`),
		repl(`"type":"Role"`, `"type":"Roles"`),
		repl(`"type":"AssumedRole"`, "\"type\":\"A\u017f\u017fumedRole\""),
		repl(`"type":"AssumedRole"`, `"type":"Assumed\"Role"`),
		repl(`"sessionIssuer":{`, `"sessionIssuer":{"type":"Role"},"x":{`),
		repl(`"sessionIssuer":{`, `"sessionIssuer.type":"Role","x":{`),
		// A duplicated userIdentity (the last one counts), one in an
		// array, and records that are not JSON: cut short, or unbalanced.
		repl(`"userIdentity":{`, `"userIdentity":{"type":"AssumedRole","sessionContext":{"sessionIssuer":{"type":"Role"}}},"userIdentity":{`),
		repl(`"userIdentity":{`, `"userIdentity":[{"type":"Root"},{`),
		func(b []byte) []byte { return b[:len(b)*2/3] },
		repl(`"sessionIssuer":{`, `"sessionIssuer":[{`),
		// Top-level keys as cloudtrail.Layout marks them (top.go): a key
		// Normalize maps, duplicated, escaped, or followed by a dotted key
		// that begins with it; a dotted key beginning an object's path; more
		// members than a Layout is used for.
		repl(`"userAgent":`, `"userAgent":"TruffleHog","userAgent":`),
		repl(`"userAgent":`, `"user\u0041gent":"TruffleHog","userAgent.x":"TruffleHog","user\u0041gent":`),
		repl(`"errorCode":`, `"errorCode.x":"AccessDenied","errorCode":`),
		repl(`"errorCode":"AccessDenied"`, `"errorCode":"AccessDenied","errorCode":"None"`),
		repl(`"userIdentity":{`, `"userIdentity.sessionContext":{"sessionIssuer":{"type":"Role"}},"userIdentity":{`),
		repl(`"userIdentity":{`, `"userIdentity.type":"AssumedRole","userIdentity":{`),
		repl(`"eventSource":`, `"ev\u0065ntSource":"x","eventSource":`),
		func(b []byte) []byte {
			var extra []byte
			for i := range 70 {
				extra = fmt.Appendf(extra, `"k%d":%d,`, i, i)
			}
			return slices.Insert(b, bytes.IndexByte(b, '{')+1, extra...)
		},
	}
	matched, viaLayout := 0, 0
	for _, r := range loadCorpus(t) {
		for vi, v := range variants {
			raw := v(slices.Clone(r.raw))
			var got []*Rule
			for _, m := range s.Match(r.source, r.name, raw) {
				got = append(got, m.Rule)
			}
			want := unfiltered(s, raw)
			if !slices.Equal(got, want) {
				t.Fatalf("%s, variant %d: Match %v, every rule %v\n%s", r.file, vi, ruleFiles(got), ruleFiles(want), raw)
			}
			matched += len(want)
			// The same from the members Normalize found, where it takes
			// the record (it repairs some: those are compared as repaired).
			ev, err := cloudtrail.Normalize(raw, "b", "k")
			if err != nil {
				continue
			}
			got = got[:0]
			for _, m := range s.MatchEvent(&ev) {
				got = append(got, m.Rule)
			}
			if want := unfiltered(s, ev.Record); !slices.Equal(got, want) {
				t.Fatalf("%s, variant %d: MatchEvent %v, every rule %v\n%s", r.file, vi, ruleFiles(got), ruleFiles(want), ev.Record)
			}
			viaLayout += len(got)
		}
	}
	if matched == 0 || viaLayout == 0 {
		t.Fatalf("%d and %d matched: nothing compared", matched, viaLayout)
	}
	t.Logf("%d matches agree, %d of them also from the layout; %d rules have needles", matched, viaLayout, withNeedles)
}

func ruleFiles(rs []*Rule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.File)
	}
	return out
}

// TestNeedlesOfRules checks which needles rules get.
func TestNeedlesOfRules(t *testing.T) {
	cases := []struct {
		detection string
		want      string // key: patterns, & between needles of a group, | between groups
	}{
		{"sel:\n    userIdentity.type: Root\ncondition: sel", "type:root"},
		{"sel:\n    errorCode|startswith: AccessDenied\nsel2:\n    errorCode|endswith: X\ncondition: 1 of sel*", "errorCode:accessdenied*,*x"},
		{"sel:\n    requestParameters.a: [Alpha, Beta]\ncondition: sel", "a:alpha,beta"},
		{"sel:\n    userIdentity.type: Root\n    userIdentity.invokedBy: null\ncondition: sel", "type:root"},
		{"sel:\n    userIdentity.invokedBy: null\n    userIdentity.type: Root\ncondition: sel", "type:root"},
		{"sel:\n    userIdentity.type: Root\nsel2:\n    errorCode: X\ncondition: sel or sel2", "type:root|errorCode:x"},
		{"sel:\n    userIdentity.type: Root\nsel2:\n    errorCode: X\ncondition: sel and not sel2", "type:root"},
		{"sel:\n    userIdentity.type: Root\ncondition: not sel", ""},
		{"sel:\n    userIdentity.type: Root\nsel2:\n    userIdentity.invokedBy: null\ncondition: sel or sel2", ""},
		{"sel:\n    userIdentity.type|re: Root\ncondition: sel", ""},
		{"sel:\n    userIdentity.type|exists: true\ncondition: sel", ""},
		{"sel:\n    eventName: DeleteTrail\n    userIdentity.type: Root\ncondition: sel", ""},
		{"sel:\n    requestParameters.a/b: x\ncondition: sel", ""},
		// A clause needs each of its items' needles; an AND, each argument's.
		{"sel:\n    userIdentity.type: AssumedRole\n    userIdentity.sessionContext.sessionIssuer.type: Role\ncondition: sel", "type:assumedrole&type:role"},
		{"sel:\n    userAgent: a\nsel2:\n    errorCode: [b, c]\ncondition: sel and sel2", "userAgent:a&errorCode:b,c"},
		{"sel:\n    - userAgent: a\n    - userAgent: b\nsel2:\n    - errorCode: c\n      userIdentity.type: t\n    - errorCode: d\ncondition: sel and sel2", "userAgent:a,b&errorCode:c&type:t|userAgent:a,b&errorCode:d"},
		{"sel:\n    - userAgent: a\n      userIdentity.type: t\n    - errorCode: b\ncondition: sel", "userAgent:a&type:t|errorCode:b"},
		{"sel:\n    userAgent: a\nsel2:\n    userAgent|re: b\ncondition: sel and sel2", "userAgent:a"},
	}
	for _, c := range cases {
		s := compileTest(t, c.detection)
		var got []string
		for _, g := range s.rules[0].needles {
			var group []string
			for _, n := range g {
				var ps []string
				for _, p := range n.alts {
					ps = append(ps, strings.Join(p.segs, "*"))
					if !p.anchorStart {
						ps[len(ps)-1] = "*" + ps[len(ps)-1]
					}
					if !p.anchorEnd {
						ps[len(ps)-1] += "*"
					}
				}
				group = append(group, n.key+":"+strings.Join(ps, ","))
			}
			got = append(got, strings.Join(group, "&"))
		}
		if g := strings.Join(got, "|"); g != c.want {
			t.Errorf("%s\nneedles %q, want %q", c.detection, g, c.want)
		}
	}
}

// TestNeedleIn compares the search for a needle with decoding: the
// member is placed at every offset, with and without spaces, with a value
// that matches or not, or is no plain string.
func TestNeedleIn(t *testing.T) {
	s := compileTest(t, "sel:\n    userIdentity.type: Root\ncondition: sel")
	n := s.rules[0].needles[0][0]
	rnd := rand.New(rand.NewPCG(1, 2))
	values := []struct {
		json string
		want bool
	}{
		{`"Root"`, true}, {`"ROOT"`, true}, {`"IAMUser"`, false}, {`"Rooty"`, false}, {`"typeRoot"`, false},
		{`["Root"]`, true}, {`5`, true}, {`"Ro\"ot"`, true}, {`{"type":"x"}`, false},
	}
	keys := []struct {
		json string
		want bool
	}{
		{`"type"`, true}, {`"userIdentity.type"`, true}, {`"xtype"`, false}, {`"type2"`, false}, {`"Type"`, false},
	}
	for at := 0; at < 20; at++ {
		for _, k := range keys {
			for _, v := range values {
				for _, sp := range []string{"", " ", "\n\t "} {
					pad := strings.Repeat("x", at)
					doc := fmt.Sprintf(`{"pad":"%s","filler":"type Root %d",%s%s:%s%s,"z":1}`, pad, rnd.IntN(100), k.json, sp, sp, v.json)
					want := k.want && v.want
					if v.json == `{"type":"x"}` {
						want = k.want // an object: left to the rule
					}
					if got := n.in([]byte(doc)); got != want {
						t.Fatalf("%s: %v, want %v", doc, got, want)
					}
				}
			}
		}
	}
	if n.in([]byte(`{"a":"type","b":"Root"}`)) {
		t.Error("a value \"type\" taken for a key")
	}
}
