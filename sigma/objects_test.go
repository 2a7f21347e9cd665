package sigma

import (
	"fmt"
	"slices"
	"testing"
)

// hostileRecords are records that the readers of objects could get wrong:
// duplicated keys at each level, escaped keys, keys holding dots, paths
// through arrays, objects that do not end where their members do, and
// (below) every record cut short at each byte.
var hostileRecords = []string{
	ev,
	`{"userIdentity":{"type":"AssumedRole","sessionContext":{"sessionIssuer":{"type":"Role"},"sessionIssuer":{"type":"User"}}}}`,
	`{"userIdentity":{"sessionContext":{"sessionIssuer":{"type":"Role"}}},"userIdentity":{"type":"Root"}}`,
	`{"userIdentity":{"sessionContext":{"sessionIssuer":{"type":"Role"}},"sessionContext":{"attributes":{}}}}`,
	`{"userIdentity":{"session\u0043ontext":{"sessionIssuer":{"type":"Role"}},"t\u0079pe":"AssumedRole"}}`,
	`{"userIdentity":{"sessionContext.sessionIssuer":{"type":"Role"},"sessionContext":{"sessionIssuer.type":"Role"}}}`,
	`{"userIdentity.sessionContext":{"sessionIssuer":{"type":"Role"}},"userIdentity":{"sessionContext":[{"sessionIssuer":{"type":"Role"}},{"sessionIssuer":[{"type":"x"}]}]}}`,
	`{"userIdentity":{"sessionContext":{"sessionIssuer":{"type":"Role"},}, "type":"AssumedRole"}}`,
	`{"userIdentity":{"sessionContext":{"sessionIssuer":{"type":"Role"} "x":1}, "type":"AssumedRole"}}`,
	`{"userIdentity":{"sessionContext":{"sessionIssuer":{"type":"Role"]}, "type":"AssumedRole"}}`,
	`{"userIdentity":{"sessionContext":{"sessionIssuer":{"type":"Ro\"le}"}}},"type":"AssumedRole"}}`,
	`{"userIdentity":{"sessionContext":{"sessionIssuer":{"type":tr{ue}}},"type":"AssumedRole"}}`,
	` { "userIdentity" : { "sessionContext" : { "sessionIssuer" : { "type" : "Role" } } , "type" : "AssumedRole" } } `,
	`{"requestParameters":{"ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]},"ipPermissions":{"items":{"ipRanges":{"items":{"cidrIp":"10.0.0.0/8"}}}}}}`,
}

// TestReadObjectAgrees checks that reading the objects a Set's paths go
// through together (objects.go) resolves every path as reading each object
// when it is first needed does, on hostile records and all their
// prefixes, and on the corpus's records.
func TestReadObjectAgrees(t *testing.T) {
	s, err := Load(BuiltinWord + "," + sharedDir(t, "sigma/cloudtrail"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []*fieldPath
	for _, p := range s.paths {
		paths = append(paths, newFieldPath(p.name))
	}
	for _, name := range []string{"requestParameters.ipPermissions.items.ipRanges.items.cidrIp", "userIdentity.sessionContext.sessionIssuer", "userIdentity.sessionContext"} {
		paths = append(paths, newFieldPath(name))
	}
	tree := &objNode{}
	for _, p := range paths {
		tree.add(p.name)
	}
	if tree.kid("userIdentity").kid("sessionContext").kid("sessionIssuer") == nil {
		t.Fatal("no objects to read into: nothing compared")
	}
	var docs [][]byte
	for _, d := range hostileRecords {
		for i := 1; i <= len(d); i++ {
			docs = append(docs, []byte(d[:i]))
		}
	}
	for _, r := range loadCorpus(t) {
		docs = append(docs, r.raw)
	}
	found := 0
	for _, doc := range docs {
		// Each path first, then all of them in turn, with and without
		// reading into objects.
		for _, first := range paths {
			var with, without record
			with.tree = tree
			with.reset(doc, len(paths), 0)
			without.reset(doc, len(paths), 0)
			for _, p := range append([]*fieldPath{first}, paths...) {
				gc, gf := with.lookup(slices.Index(paths, p), p)
				wc, wf := without.lookup(slices.Index(paths, p), p)
				if g, w := fmt.Sprint(gc, gf), fmt.Sprint(wc, wf); g != w {
					t.Fatalf("%s in %s (after %s):\nreading into objects %s\nreading each when needed %s", p.name, doc, first.name, g, w)
				}
				if wf {
					found++
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no path found: nothing compared")
	}
}
