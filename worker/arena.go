package worker

import "unsafe"

// arena hands out the memory that a Decoder's rows keep: each record's copy
// and the text of its fields. It carves them from chunks shared by many
// records, so that a record costs no allocation of its own, and never
// writes to memory it has handed out: a chunk lives for as long as any row
// still points into it, and the garbage collector frees it after that.
type arena struct {
	chunk []byte // free space of the current chunk
}

const (
	// arenaChunk is the largest size the runtime allocates from its
	// per-CPU caches: a bigger chunk takes the large-object path, which
	// measured about 10% slower per record (64 KB against 32 KB).
	arenaChunk = 32 << 10
	arenaLarge = 8 << 10 // a request this big gets its own allocation
)

// alloc returns n bytes that no one else holds. A nil arena allocates.
func (a *arena) alloc(n int) []byte {
	if a == nil || n >= arenaLarge {
		return make([]byte, n)
	}
	if n > len(a.chunk) {
		a.chunk = make([]byte, arenaChunk)
	}
	b := a.chunk[:n:n]
	a.chunk = a.chunk[n:]
	return b
}

// bytesString returns b as a string without a copy. b must never be
// written again: true of what alloc returned once it is filled.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
