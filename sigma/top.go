package sigma

import (
	"math/bits"

	"github.com/pgtrail/pgtrail/cloudtrail"
)

// Records whose top-level members are known. cloudtrail.Normalize has
// walked each record's top level already, and says where each member lies
// (cloudtrail.Layout), and which of the keys it maps each member's key is.
// Then no rule scans the record's top level: a path looks only at the
// members whose keys can begin it, and a needle (needle.go) is searched for
// only inside those members, from the quote before the key to the end of
// the value, rather than in the whole record. Which members can begin the
// paths of a first segment is worked out once per record and segment, as
// a bit per member: a member whose key Normalize maps can begin only the
// paths whose first segment is that key; the others are compared.
//
// The members and the record agree by construction: both come from the
// same pass of Normalize over the same bytes. TestPrefiltersAgree checks that
// every rule decides every corpus and hostile record the same either way.

// maxKnown is the most top-level members used: one bit each. A record
// with more (CloudTrail's have about 25) is read as if none were known.
const maxKnown = 64

// allMembers selects every top-level member.
const allMembers = ^uint64(0)

// useLayout makes r start from the members that l lists.
func (r *record) useLayout(l *cloudtrail.Layout) {
	if l.Members == nil || len(l.Members) > maxKnown {
		return
	}
	r.layout = l.Members
	r.pos = len(r.raw)
	r.done = true
	r.known = true
	if !l.Escaped {
		r.escapes = 1 // no backslash at all: no \u escape either
	}
}

// topMember returns the top-level member i of a record whose members are
// known.
func (r *record) topMember(i int) member {
	m := &r.layout[i]
	return member{
		k0: m.KeyStart, k1: m.KeyStart + int32(m.KeyLen), v0: m.ValueStart, v1: m.ValueEnd,
		kesc: m.KeyEscaped, key: m.Key,
	}
}

// memberKeyID returns the cloudtrail.Member Key of a top-level key, 0 if
// Normalize maps no such key.
func memberKeyID(key string) uint8 {
	for k := 1; k < cloudtrail.NumMemberKeys; k++ {
		if cloudtrail.MemberKey(uint8(k)) == key {
			return uint8(k)
		}
	}
	return 0
}

// membersFor returns the bits of the top-level members whose keys can
// begin path: its first segment, alone or followed by a dot. Every member
// when the path's first segment has no id.
func (r *record) membersFor(path *fieldPath) uint64 {
	if path.seg < 0 {
		return allMembers
	}
	st := &r.segs[path.seg]
	if st.gen == r.gen {
		return st.members
	}
	r.keyBits()
	// A mapped key is the first segment only if it is that key; the other
	// keys are compared: with escapes, or holding dots, they may be too.
	found := r.byKey[path.key] &^ r.byKey[0]
	first := path.first
	for rest := r.byKey[0]; rest != 0; rest &= rest - 1 {
		i := bits.TrailingZeros64(rest)
		m := &r.layout[i]
		if m.KeyEscaped {
			found |= 1 << i
			continue
		}
		k := r.raw[m.KeyStart : m.KeyStart+int32(m.KeyLen)]
		if len(k) >= len(first) && (len(k) == len(first) || k[len(first)] == '.') && string(k[:len(first)]) == first {
			found |= 1 << i
		}
	}
	*st = segState{gen: r.gen, members: found}
	return found
}

// resolveKnown is resolve for a record whose top-level members are known:
// it looks only at the members whose keys can begin path, last first.
func (r *record) resolveKnown(path *fieldPath) bool {
	found := false
	for which := r.membersFor(path); which != 0; {
		i := 63 - bits.LeadingZeros64(which)
		which &^= 1 << i
		mi := r.topMember(i)
		m := &mi
		n, ok := r.keyMatches(m, path.name, 0)
		if !ok || r.shadowedKnown(i, m) {
			continue
		}
		if n < len(path.name) && !m.kesc && r.raw[m.v0] == '{' {
			// As scanTo does: the objects the paths go through, in one pass.
			r.readObject(m.v0, r.tree.kid(bytesString(r.raw[m.k0:m.k1])), 0)
		}
		found = r.descend(m.v0, m.v1, path.name, n, 0, true) || found
	}
	return found
}

// shadowedKnown is shadowed for the top-level member i (m) of a record
// whose top-level members are known: a member whose key Normalize maps is
// shadowed only by a later one with the same key, which Normalize maps too,
// and another only by a later one whose key Normalize does not map.
func (r *record) shadowedKnown(i int, m *member) bool {
	r.keyBits()
	later := r.byKey[m.key] &^ (1<<(i+1) - 1)
	if m.key != 0 {
		return later != 0
	}
	for ; later != 0; later &= later - 1 {
		o := r.topMember(bits.TrailingZeros64(later))
		if r.sameKey(&o, m) {
			return true
		}
	}
	return false
}

// keyBits fills byKey, once per record.
func (r *record) keyBits() {
	if !r.keyed {
		r.keyed = true
		clear(r.byKey[:])
		for i := range r.layout {
			r.byKey[r.layout[i].Key] |= 1 << i
		}
	}
}

// findTop is find for a record whose top-level members are all known: it
// searches only the members that can hold a needle's member.
func (k *needleKey) findTop(r *record, states []uint8) {
	k.start(states)
	left := len(k.needles)
	var which uint64
	for _, p := range k.paths {
		which |= r.membersFor(p)
	}
	for ; which != 0; which &= which - 1 {
		m := &r.layout[bits.TrailingZeros64(which)]
		if k.search(r.raw[m.KeyStart-1:m.ValueEnd], states, &left) {
			return
		}
	}
}
