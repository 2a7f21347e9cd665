package sigma

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// FuzzRecordLookup compares the record reader with encoding/json: for any
// valid JSON object and path, the candidates and whether the path names a
// member must be those of the decoded value.
func FuzzRecordLookup(f *testing.F) {
	f.Add([]byte(ev), "userIdentity.sessionContext.sessionIssuer.type")
	f.Add([]byte(ev), "requestParameters.blockDeviceMapping.items.ebs.volumeSize")
	f.Add([]byte(ev), "requestParameters")
	f.Add([]byte(`{"a":{"b":1},"a":{"b":2},"a.b":[3,[4,{"c":null}]]}`), "a.b")
	f.Add([]byte(`{"k\u0041y":"v\"\\\/\n\u00e9\ud83d\ude00","x":[]}`), "kAy")
	f.Add([]byte(` { "a" : [ { "b" : true } , { "b" : false } ] } `), "a.b")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		var r record
		r.reset(data, 1, 0)
		got, gotFound := r.lookup(0, newFieldPath(name)) // must not panic, whatever data is
		if name == "" || !utf8.Valid(data) || !json.Valid(data) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		if _, ok := v.(map[string]any); !ok {
			return
		}
		want, wantFound := refLookup(v, name, 0, 0)
		if gotFound != wantFound {
			t.Fatalf("%s in %s: found %v, want %v", name, data, gotFound, wantFound)
		}
		if g, w := candStrings(t, got), refStrings(t, want); !slices.Equal(g, w) {
			t.Fatalf("%s in %s:\n got %q\nwant %q", name, data, g, w)
		}
	})
}

// refLookup resolves name from offset at in the decoded value v, as
// record.lookup does: keys match one or more dot-separated segments, paths
// continue into array elements, arrays are flattened.
func refLookup(v any, name string, at, depth int) ([]any, bool) {
	if at == len(name) {
		return refFlatten(v, 0), true
	}
	if depth > maxDepth {
		return nil, false
	}
	var out []any
	found := false
	switch x := v.(type) {
	case map[string]any:
		rest := name[at:]
		for k, val := range x {
			if !strings.HasPrefix(rest, k) || (len(k) < len(rest) && rest[len(k)] != '.') {
				continue
			}
			next := len(name)
			if len(k) < len(rest) {
				next = at + len(k) + 1
			}
			c, f := refLookup(val, name, next, depth+1)
			out, found = append(out, c...), found || f
		}
	case []any:
		for _, el := range x {
			c, f := refLookup(el, name, at, depth+1)
			out, found = append(out, c...), found || f
		}
	}
	return out, found
}

func refFlatten(v any, depth int) []any {
	if a, ok := v.([]any); ok {
		var out []any
		if depth > maxDepth {
			return nil
		}
		for _, el := range a {
			out = append(out, refFlatten(el, depth+1)...)
		}
		return out
	}
	return []any{v}
}

// candStrings describes candidates comparably: kind and text, objects
// decoded and encoded again.
func candStrings(t *testing.T, cs []cand) []string {
	var out []string
	for _, c := range cs {
		switch c.kind {
		case kJSON:
			var v any
			d := json.NewDecoder(strings.NewReader(c.text))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				t.Fatalf("object candidate %q: %v", c.text, err)
			}
			out = append(out, "json:"+canonical(v))
		case kString:
			out = append(out, "string:"+c.text)
		case kNumber:
			out = append(out, "number:"+c.text)
		case kBool:
			out = append(out, "bool:"+c.text)
		default:
			out = append(out, "null")
		}
	}
	slices.Sort(out)
	return out
}

func refStrings(t *testing.T, vs []any) []string {
	var out []string
	for _, v := range vs {
		switch x := v.(type) {
		case map[string]any:
			out = append(out, "json:"+canonical(x))
		case string:
			out = append(out, "string:"+x)
		case json.Number:
			out = append(out, "number:"+string(x))
		case bool:
			if x {
				out = append(out, "bool:true")
			} else {
				out = append(out, "bool:false")
			}
		case nil:
			out = append(out, "null")
		default:
			t.Fatalf("unexpected %T", v)
		}
	}
	slices.Sort(out)
	return out
}

func canonical(v any) string {
	b, _ := json.Marshal(v) // sorted keys
	return string(b)
}

// TestMatchConcurrent runs one Set from several goroutines (for the race
// detector) and checks they agree with a sequential run.
func TestMatchConcurrent(t *testing.T) {
	s := Builtin()
	recs := loadCorpus(t)
	want := make([][]Match, len(recs))
	for i, r := range recs {
		want[i] = s.Match(r.source, r.name, r.raw)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, r := range recs {
				if got := s.Match(r.source, r.name, r.raw); !reflect.DeepEqual(got, want[i]) {
					t.Errorf("record %d: %v, want %v", i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}
