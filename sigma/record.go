package sigma

import (
	"bytes"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// record is the lazily read view of one event's JSON record that a Match
// call evaluates rules on. Nothing is parsed until a candidate rule asks for
// a field; then one pass lists the record's top-level members, and a nested
// path (userIdentity.type) looks into the one member it names. Each path is
// resolved at most once per record, whatever the number of rules that use it.
//
// The record's bytes are not copied: the string values handed to matchers
// alias them, so the record must not change during the Match call. The
// scanner tolerates invalid JSON (it never reads out of bounds, never loops
// forever); on such input a path simply resolves to nothing.
type record struct {
	raw []byte
	// top holds the top-level members read so far, in record order; the
	// scan resumes at pos (-1: the object's '{' is not read yet) and is
	// over when done.
	top  []member
	pos  int
	done bool
	// known is whether top was handed over whole, by the decoder; then
	// keyed holds, once filled, the bits of its members by Member Key
	// (top.go).
	known  bool
	layout []cloudtrail.Member
	keyed  bool
	byKey  [cloudtrail.NumMemberKeys]uint64
	// escapes is 1 if the record has no \u escape, 2 if it has (0: not
	// looked yet). Without one, a key's text occurs verbatim in the record.
	escapes uint8

	// paths caches each path's resolution for this record, by path id.
	paths []pathResult
	gen   uint32 // paths[i] is valid only if paths[i].gen == gen
	cands []cand // the candidates of every resolved path
	// mems holds the members of the nested objects read so far; objs
	// says which are whose.
	mems []member
	objs []object
	// segs remembers, by first segment id, how far the top-level scan must
	// go for paths that begin with that segment.
	segs []segState
	// tree is the objects the Set's paths go through (objects.go), nil
	// for none; stack holds the members of objects being read.
	tree  *objNode
	stack []member
}

// segState is where the last occurrence of a first segment is, or -1;
// when the top-level members are known, members has the bits of those
// whose keys can begin the segment's paths instead (top.go).
type segState struct {
	gen     uint32
	limit   int32
	members uint64
}

// member is one object member: the key (between its quotes) and the value.
type member struct {
	k0, k1 int32
	v0, v1 int32
	kesc   bool  // the key has backslash escapes
	key    uint8 // of a top-level member, its cloudtrail.Member Key if known
}

// pathResult is where a resolved path's candidates lie in record.cands.
type pathResult struct {
	gen    uint32
	off, n int32
	// found is whether the path names at least one member, whatever its
	// value (null included): what the exists modifier asks.
	found bool
}

// Kinds of candidate values.
const (
	kString = iota
	kNumber
	kBool
	kNull
	kJSON // an object, or an array nested in an array: matched as its JSON text
)

// cand is one value a field holds, as matchers see it: a string's decoded
// text, a number's or a boolean's literal text, or an object's JSON text.
// An array is not a candidate itself: its elements are.
type cand struct {
	text string
	kind uint8
	// ascii remembers for string matchers whether text is ASCII: 0 not
	// known yet, 1 it is, 2 it is not.
	ascii uint8
}

// reset prepares r for the record raw, keeping its buffers; npaths and
// nsegs are the number of path and first segment ids.
func (r *record) reset(raw []byte, npaths, nsegs int) {
	r.raw = raw
	r.top = r.top[:0]
	r.pos = -1
	r.done = false
	r.known = false
	r.layout = nil
	r.keyed = false
	r.escapes = 0
	r.cands = r.cands[:0]
	r.mems = r.mems[:0]
	r.objs = r.objs[:0]
	r.stack = r.stack[:0]
	if cap(r.paths) < npaths || cap(r.segs) < nsegs {
		r.paths = make([]pathResult, npaths)
		r.segs = make([]segState, nsegs)
		r.gen = 0
	}
	r.paths = r.paths[:npaths]
	r.segs = r.segs[:nsegs]
	r.gen++
	if r.gen == 0 { // wrapped: clear so no stale entry looks current
		clear(r.paths)
		clear(r.segs)
		r.gen = 1
	}
}

// lookup returns the candidates of the path with the given id and dotted
// name, and whether the path names any member.
func (r *record) lookup(id int, path *fieldPath) ([]cand, bool) {
	pr := &r.paths[id]
	if pr.gen != r.gen {
		off := len(r.cands)
		found := r.resolve(path)
		*pr = pathResult{gen: r.gen, off: int32(off), n: int32(len(r.cands) - off), found: found}
	}
	return r.cands[pr.off : pr.off+pr.n], pr.found
}

// resolve appends the candidates of path to r.cands.
func (r *record) resolve(path *fieldPath) bool {
	if r.known {
		return r.resolveKnown(path)
	}
	r.scanFor(path)
	// Top-level members: a key may be the path's first segment or, holding
	// dots itself, several of them.
	found := false
	for i := len(r.top) - 1; i >= 0; i-- {
		m := &r.top[i]
		if r.keyDiffers(m, path.name) {
			continue
		}
		n, ok := r.keyMatches(m, path.name, 0)
		if !ok || r.shadowed(r.top[i+1:], m) {
			continue
		}
		found = r.descend(m.v0, m.v1, path.name, n, 0, true) || found
	}
	return found
}

// scanFor reads top-level members until every member whose key begins with
// first has been read. Without \u escapes in the record, such a key's text
// occurs verbatim, so the scan stops after the last occurrence of first
// (found with a vectorized search), and does not start at all when first
// does not occur: most records are read only as far as userIdentity, or
// not at all.
func (r *record) scanFor(path *fieldPath) {
	if r.done {
		return
	}
	limit := len(r.raw)
	if path.first != "" && r.noEscapes() {
		if path.seg >= 0 && r.segs[path.seg].gen == r.gen {
			limit = int(r.segs[path.seg].limit) // searched already
		} else {
			// Members before pos are read: only the rest can hold more.
			limit = -1
			if at := max(r.pos, 0); at < len(r.raw) {
				if i := lastIndex(r.raw[at:], path.first, path.rare); i >= 0 {
					limit = at + i
				}
			}
			if path.seg >= 0 {
				r.segs[path.seg] = segState{gen: r.gen, limit: int32(limit)}
			}
		}
	}
	if limit >= r.pos {
		r.scanTo(limit, path)
	}
}

// noEscapes reports whether the record has no \u escape.
func (r *record) noEscapes() bool {
	if r.escapes == 0 {
		r.escapes = 1
		// Backslashes are few: find each, rather than the pair.
		for at := 0; ; {
			i := bytes.IndexByte(r.raw[at:], '\\')
			if i < 0 || at+i+1 >= len(r.raw) {
				break
			}
			if r.raw[at+i+1] == 'u' {
				r.escapes = 2
				break
			}
			at += i + 1
		}
	}
	return r.escapes == 1
}

// scanTo reads top-level members until the scan has passed offset limit.
// The object that path continues into (userIdentity for
// userIdentity.type) is read member by member on the way, rather than
// skipped now and read again.
func (r *record) scanTo(limit int, path *fieldPath) {
	into := ""
	if len(path.first) < len(path.name) {
		into = path.first
	}
	b := r.raw
	i := r.pos
	if i < 0 {
		i = skipSpace(b, 0)
		if i >= len(b) || b[i] != '{' {
			r.done = true
			return
		}
		i = skipSpace(b, i+1)
	}
	for i <= limit {
		if i >= len(b) || b[i] != '"' {
			r.done = true
			break
		}
		kend, esc := skipStringEsc(b, i)
		if kend < 0 {
			r.done = true
			break
		}
		j := skipSpace(b, kend)
		if j >= len(b) || b[j] != ':' {
			r.done = true
			break
		}
		v0 := skipSpace(b, j+1)
		v1 := v0
		if into != "" && !esc && v0 < len(b) && b[v0] == '{' && string(b[i+1:kend-1]) == into {
			v1 = r.readObject(int32(v0), r.tree.kid(into), 0)
		}
		if v1 <= v0 {
			v1 = skipValue(b, v0)
		}
		if v1 <= v0 {
			r.done = true
			break
		}
		r.top = append(r.top, member{k0: int32(i + 1), k1: int32(kend - 1), v0: int32(v0), v1: int32(v1), kesc: esc})
		i = skipSpace(b, v1)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	r.pos = i
}

// shadowed reports whether a later member of the same object has m's key:
// of duplicated keys the last one counts, as in PostgreSQL's jsonb.
func (r *record) shadowed(later []member, m *member) bool {
	for i := range later {
		if r.sameKey(&later[i], m) {
			return true
		}
	}
	return false
}

func (r *record) sameKey(a, b *member) bool {
	if !a.kesc && !b.kesc {
		return bytes.Equal(r.raw[a.k0:a.k1], r.raw[b.k0:b.k1])
	}
	return r.key(a) == r.key(b)
}

// key returns m's key, decoded.
func (r *record) key(m *member) string {
	if !m.kesc {
		return bytesString(r.raw[m.k0:m.k1])
	}
	return unquote(r.raw[m.k0:m.k1])
}

// keyDiffers reports, without a call, that m's key is not the next
// segment (or segments) of rest, as most keys are not: their length or
// their first byte differs. false says nothing.
func (r *record) keyDiffers(m *member, rest string) bool {
	n := int(m.k1 - m.k0)
	return !m.kesc && (n > len(rest) || (n < len(rest) && rest[n] != '.') || (n > 0 && r.raw[m.k0] != rest[0]))
}

// keyMatches reports whether m's key is the next segment (or segments) of
// the dotted name from offset at, and returns the offset after it.
func (r *record) keyMatches(m *member, name string, at int) (int, bool) {
	rest := name[at:]
	var k string
	if !m.kesc {
		if r.keyDiffers(m, rest) {
			return 0, false
		}
		k = bytesString(r.raw[m.k0:m.k1])
	} else {
		k = unquote(r.raw[m.k0:m.k1])
	}
	if len(k) > len(rest) || rest[:len(k)] != k {
		return 0, false
	}
	if len(k) == len(rest) {
		return len(name), true
	}
	if rest[len(k)] != '.' {
		return 0, false
	}
	return at + len(k) + 1, true
}

// descend appends the candidates that the rest of name, from offset at,
// finds in the value raw[v0:v1]; depth bounds the recursion. The members of
// objects outside arrays are kept for other paths (cache); those of array
// elements are not, as there can be thousands of them.
func (r *record) descend(v0, v1 int32, name string, at int, depth int, cache bool) bool {
	if at == len(name) {
		r.appendCands(v0, v1, 0)
		return true
	}
	if v0 >= v1 || depth > maxDepth {
		return false
	}
	switch r.raw[v0] {
	case '{':
		var ms []member
		if cache {
			ms = r.members(v0)
		} else {
			start := len(r.mems)
			r.mems = scanMembers(r.raw, int(v0), r.mems)
			ms = r.mems[start:]
		}
		found := false
		for i := len(ms) - 1; i >= 0; i-- {
			if r.keyDiffers(&ms[i], name[at:]) {
				continue
			}
			n, ok := r.keyMatches(&ms[i], name, at)
			if !ok || r.shadowed(ms[i+1:], &ms[i]) {
				continue
			}
			found = r.descend(ms[i].v0, ms[i].v1, name, n, depth+1, cache) || found
		}
		return found
	case '[':
		// A path continues into each element of an array, as a search
		// engine indexes the fields of an array of objects.
		found := false
		i := skipSpace(r.raw, int(v0)+1)
		for i < int(v1) && r.raw[i] != ']' {
			end := skipValue(r.raw, i)
			if end <= i {
				return found
			}
			found = r.descend(int32(i), int32(end), name, at, depth+1, false) || found
			i = skipSpace(r.raw, end)
			if i < int(v1) && r.raw[i] == ',' {
				i = skipSpace(r.raw, i+1)
			}
		}
		return found
	}
	return false
}

// members returns the members of the object at raw[v0], reading them on
// the first call for this record: paths into the same object
// (userIdentity.type, userIdentity.sessionContext.sessionIssuer.type)
// read it once.
func (r *record) members(v0 int32) []member {
	for _, o := range r.objs {
		if o.v0 == v0 {
			return r.mems[o.start:o.end]
		}
	}
	start := len(r.mems)
	r.mems = scanMembers(r.raw, int(v0), r.mems)
	r.objs = append(r.objs, object{v0: v0, start: int32(start), end: int32(len(r.mems))})
	return r.mems[start:]
}

// objectEnd reads the members of the object at raw[v0] and returns the
// object's end, or v0 if it is malformed.
func (r *record) objectEnd(v0 int32) int {
	ms := r.members(v0)
	i := int(v0) + 1
	if len(ms) > 0 {
		i = int(ms[len(ms)-1].v1)
	}
	i = skipSpace(r.raw, i)
	if i < len(r.raw) && r.raw[i] == '}' {
		return i + 1
	}
	return int(v0)
}

// object is where the members of a nested object lie in record.mems.
type object struct {
	v0, start, end int32
}

// maxDepth bounds how deep a path or an array is followed.
const maxDepth = 64

// appendCands appends the value raw[v0:v1] as candidates: an array's
// elements each (nested arrays flattened), any other value as itself.
func (r *record) appendCands(v0, v1 int32, depth int) {
	if v0 >= v1 {
		return
	}
	b := r.raw[v0:v1]
	switch b[0] {
	case '"':
		r.cands = append(r.cands, cand{text: stringValue(b), kind: kString})
	case '{':
		r.cands = append(r.cands, cand{text: bytesString(b), kind: kJSON})
	case '[':
		if depth > maxDepth {
			return
		}
		i := skipSpace(r.raw, int(v0)+1)
		for i < int(v1) && r.raw[i] != ']' {
			end := skipValue(r.raw, i)
			if end <= i {
				return
			}
			r.appendCands(int32(i), int32(end), depth+1)
			i = skipSpace(r.raw, end)
			if i < int(v1) && r.raw[i] == ',' {
				i = skipSpace(r.raw, i+1)
			}
		}
	case 'n':
		r.cands = append(r.cands, cand{kind: kNull})
	case 't', 'f':
		r.cands = append(r.cands, cand{text: bytesString(b), kind: kBool})
	default:
		r.cands = append(r.cands, cand{text: bytesString(b), kind: kNumber})
	}
}
