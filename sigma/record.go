package sigma

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
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
}

// segState is where the last occurrence of a first segment is, or -1.
type segState struct {
	gen   uint32
	limit int32
}

// member is one object member: the key (between its quotes) and the value.
type member struct {
	k0, k1 int32
	v0, v1 int32
	kesc   bool // the key has backslash escapes
}

// pathResult is where a resolved path's candidates lie in record.cands.
type pathResult struct {
	gen    uint32
	off, n int32
	// found is whether the path names at least one member, whatever its
	// value (null included): what the exists modifier asks.
	found bool
}

// fieldPath is a field name of a rule, such as userIdentity.type: dots
// separate the keys of nested objects (a key that holds dots itself matches
// too, as it would in a search engine).
type fieldPath struct {
	name string
	// first is the text every top-level key the path can match begins
	// with: its first segment; empty when that segment has characters that
	// JSON may escape other than with \u, so that it need not occur
	// verbatim.
	first string
	rare  int // the index in first of its rarest byte
	seg   int // the id of first in its Set, or -1
}

func newFieldPath(name string) *fieldPath {
	first, _, _ := strings.Cut(name, ".")
	for i := 0; i < len(first); i++ {
		if c := first[i]; c < 0x20 || c == '"' || c == '\\' || c == '/' {
			first = ""
			break
		}
	}
	return &fieldPath{name: name, first: first, rare: rarest(first), seg: -1}
}

// rarest returns the index of the byte of s least frequent in CloudTrail
// records (the y of userIdentity, the C of errorCode).
func rarest(s string) int {
	best, score := 0, -1
	for i := 0; i < len(s); i++ {
		sc := 1000 // not printable ASCII: rarer than any
		if j := strings.IndexByte(byteFrequency, s[i]); j >= 0 {
			sc = len(byteFrequency) - j
		}
		if sc > score {
			best, score = i, sc
		}
	}
	return best
}

// byteFrequency is printable ASCII from the least to the most frequent
// byte in the corpus's records (855 records, 1 MB, counted once). Upper-case
// letters are not all rare: access key and principal ids are full of them.
const byteFrequency = "^`|~!&$?<>'#=%;()*@+[]jYJQWBUGXF_xqk\\OZLKVHzN/MRPEhTC{}DSgywfb v6.7895pI4A3lm0u-2d,ic1orn:stae\""

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
}

// reset prepares r for the record raw, keeping its buffers; npaths and
// nsegs are the number of path and first segment ids.
func (r *record) reset(raw []byte, npaths, nsegs int) {
	r.raw = raw
	r.top = r.top[:0]
	r.pos = -1
	r.done = false
	r.escapes = 0
	r.cands = r.cands[:0]
	r.mems = r.mems[:0]
	r.objs = r.objs[:0]
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
	r.scanFor(path)
	// Top-level members: a key may be the path's first segment or, holding
	// dots itself, several of them.
	found := false
	for i := len(r.top) - 1; i >= 0; i-- {
		m := &r.top[i]
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
		if bytes.Contains(r.raw, []byte(`\u`)) {
			r.escapes = 2
		}
	}
	return r.escapes == 1
}

// lastIndex returns the index of the last occurrence of lit in b, or -1.
// It looks for lit's byte at rare, which the caller chose to be one that
// CloudTrail's text seldom holds, with the vectorized IndexByte: a search
// for the first byte would stop at every other key.
func lastIndex(b []byte, lit string, rare int) int {
	last := -1
	c := lit[rare]
	for at := rare; at < len(b); {
		i := bytes.IndexByte(b[at:], c)
		if i < 0 {
			break
		}
		start := at + i - rare
		if start+len(lit) <= len(b) && string(b[start:start+len(lit)]) == lit {
			last = start
		}
		at += i + 1
	}
	return last
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
			v1 = r.objectEnd(int32(v0))
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

// keyMatches reports whether m's key is the next segment (or segments) of
// the dotted name from offset at, and returns the offset after it.
func (r *record) keyMatches(m *member, name string, at int) (int, bool) {
	rest := name[at:]
	var k string
	if !m.kesc {
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

// bytesString returns b as a string without copying; b must not change
// while the string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// stringValue returns the text of the JSON string literal b (quotes
// included), without copying when it has no escapes.
func stringValue(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	in := b[1 : len(b)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return bytesString(in)
	}
	return unquote(in)
}

// unquote decodes the escapes of a JSON string's content. Invalid escapes
// are kept as they are; unpaired surrogates become U+FFFD.
func unquote(in []byte) string {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' || i+1 >= len(in) {
			out = append(out, c)
			continue
		}
		i++
		switch in[i] {
		case '"', '\\', '/':
			out = append(out, in[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := decodeU(in[i+1:])
			if n == 0 {
				out = append(out, '\\', 'u')
				continue
			}
			i += n
			if utf16.IsSurrogate(r) {
				r2, n2 := rune(-1), 0
				if i+2 < len(in) && in[i+1] == '\\' && in[i+2] == 'u' {
					r2, n2 = decodeU(in[i+3:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 2 + n2
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, '\\', in[i])
		}
	}
	return string(out)
}

// decodeU decodes the four hex digits at the start of b; n is 0 if there
// are none.
func decodeU(b []byte) (r rune, n int) {
	if len(b) < 4 {
		return 0, 0
	}
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, 0
		}
		r = r<<4 | rune(c)
	}
	return r, 4
}

// scanMembers appends the members of the object at b[i] (after optional
// whitespace) to ms. It returns ms unchanged if there is no object there,
// and the members read so far if the object is cut short or malformed.
func scanMembers(b []byte, i int, ms []member) []member {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return ms
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] == '"' {
		kend, esc := skipStringEsc(b, i)
		if kend < 0 {
			return ms
		}
		j := skipSpace(b, kend)
		if j >= len(b) || b[j] != ':' {
			return ms
		}
		v0 := skipSpace(b, j+1)
		v1 := skipValue(b, v0)
		if v1 <= v0 {
			return ms
		}
		ms = append(ms, member{k0: int32(i + 1), k1: int32(kend - 1), v0: int32(v0), v1: int32(v1), kesc: esc})
		i = skipSpace(b, v1)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return ms
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the end of the JSON value that starts at b[i], or i if
// there is none (or it is cut short).
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		end, _ := skipStringEsc(b, i)
		if end < 0 {
			return i
		}
		return end
	case '{', '[':
		return skipContainer(b, i)
	}
	// A number or a literal: up to the next delimiter.
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r', ':', '"', '{', '[':
			return j
		}
		j++
	}
	return j
}

// skipContainer returns the end of the object or array that starts at
// b[i], or i if it is not closed. It is the inner loop of every scan, so
// strings are skipped in place, eight bytes at a time, without a call.
func skipContainer(b []byte, i int) int {
	depth := 0
	j := i
	for j < len(b) {
		c := b[j]
		if !structural[c] {
			j++
			continue
		}
		switch c {
		case '"':
			j++
			for {
				for j+8 <= len(b) {
					m := quoteOrBackslash(binary.LittleEndian.Uint64(b[j:]))
					if m != 0 {
						j += bits.TrailingZeros64(m) >> 3
						break
					}
					j += 8
				}
				for j < len(b) && b[j] != '"' && b[j] != '\\' {
					j++
				}
				if j >= len(b) {
					return i
				}
				if b[j] == '"' {
					j++
					break
				}
				j += 2 // a backslash and the character it escapes
			}
			continue
		case '{', '[':
			depth++
		default: // '}', ']'
			depth--
			if depth == 0 {
				return j + 1
			}
		}
		j++
	}
	return i
}

// structural marks the bytes skipContainer stops at outside strings.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// Constants of the SWAR search for a quote or a backslash eight bytes at a
// time.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// quoteOrBackslash returns a word with the high bit set in each byte of w
// that is '"' or '\\' (and possibly in bytes above such a byte; the lowest
// set bit is always exact).
func quoteOrBackslash(w uint64) uint64 {
	q := w ^ (lsb * '"')
	s := w ^ (lsb * '\\')
	return ((q-lsb)&^q | (s-lsb)&^s) & msb
}

// skipString returns the end of the string literal that starts at b[i]
// (the index after its closing quote), or -1 if it is not closed.
func skipString(b []byte, i int) int {
	end, _ := skipStringEsc(b, i)
	return end
}

// skipStringEsc is skipString that also reports whether the string has
// backslash escapes. It reads eight bytes at a time: most of a CloudTrail
// record's bytes are inside strings.
func skipStringEsc(b []byte, i int) (int, bool) {
	esc := false
	j := i + 1
	for {
		for j+8 <= len(b) {
			m := quoteOrBackslash(binary.LittleEndian.Uint64(b[j:]))
			if m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		if j >= len(b) {
			return -1, esc
		}
		if b[j] == '"' {
			return j + 1, esc
		}
		esc = true
		j += 2 // the backslash and the character it escapes
	}
}
