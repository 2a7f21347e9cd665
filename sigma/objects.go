package sigma

import "strings"

// Reading into objects. A path such as
// userIdentity.sessionContext.sessionIssuer.type is resolved object by
// object, and each object's members are read once per record (members).
// Read on their own, the members of userIdentity would skip over
// sessionContext, which the next segment then reads again, and so on down
// the path: the bytes of the deepest objects would be read once per level.
// So when the members of an object are read, the members that the Set's
// paths continue into (objNode) are read at once, as objects, and their end
// comes from their last member rather than from skipping them: the whole
// of userIdentity is read in one pass.
//
// The outcome is the one of reading each object when it is first needed:
// an object's members are the same however they are read, and its end
// (objectEnd) is where skipValue puts it whenever its members end with its
// closing brace; otherwise the value is skipped as before.

// objNode is an object that paths of a Set continue into: kids are the
// members (by key) that some path continues into from there.
type objNode struct {
	key  string
	kids []*objNode
}

// add adds the objects that the dotted name goes through, below n.
func (n *objNode) add(name string) {
	segs := strings.Split(name, ".")
	for _, seg := range segs[:len(segs)-1] {
		if seg == "" || hasEscapable(seg) {
			return // a key that may be written otherwise than verbatim
		}
		k := n.kid(seg)
		if k == nil {
			k = &objNode{key: seg}
			n.kids = append(n.kids, k)
		}
		n = k
	}
}

// kid returns the member of n with the given key that paths continue
// into, or nil. n may be nil.
func (n *objNode) kid(key string) *objNode {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.key == key {
			return k
		}
	}
	return nil
}

// readObject reads the members of the object at raw[v0] and, inside it,
// those of the objects that n's kids name, keeping them for members; it
// returns the object's end as objectEnd does (v0 if it does not end with
// its last member). Members already read are not read again.
func (r *record) readObject(v0 int32, n *objNode, depth int) int {
	for _, o := range r.objs {
		if o.v0 == v0 {
			return r.objectEnd(v0)
		}
	}
	b := r.raw
	base := len(r.stack)
	i := skipSpace(b, int(v0)+1)
	for i < len(b) && b[i] == '"' {
		kend, esc := skipStringEsc(b, i)
		if kend < 0 {
			break
		}
		j := skipSpace(b, kend)
		if j >= len(b) || b[j] != ':' {
			break
		}
		vs := skipSpace(b, j+1)
		ve := vs
		if !esc && vs < len(b) && b[vs] == '{' && depth < maxDepth {
			if k := n.kid(bytesString(b[i+1 : kend-1])); k != nil {
				ve = r.readObject(int32(vs), k, depth+1)
			}
		}
		if ve <= vs {
			ve = skipValue(b, vs)
		}
		if ve <= vs {
			break
		}
		r.stack = append(r.stack, member{k0: int32(i + 1), k1: int32(kend - 1), v0: int32(vs), v1: int32(ve), kesc: esc})
		i = skipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	// The members of the objects inside were kept while these were read:
	// these follow them, together.
	start := len(r.mems)
	r.mems = append(r.mems, r.stack[base:]...)
	r.stack = r.stack[:base]
	r.objs = append(r.objs, object{v0: v0, start: int32(start), end: int32(len(r.mems))})
	return r.objectEnd(v0)
}
