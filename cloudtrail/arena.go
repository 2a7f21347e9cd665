package cloudtrail

import (
	"sync"
	"unsafe"
)

// arena hands out the memory that a Decoder's rows keep: each record's copy
// and the text of its fields. It carves them from chunks shared by many
// records, so that a record costs no allocation of its own, and never
// writes to memory it has handed out.
//
// By default a chunk lives for as long as any entry still points into it,
// and the garbage collector frees it after that. With a pool
// (Decoder.Recycle), the arena draws its chunks from the pool and lists
// them; Decoder.TakeChunks hands the list to the entries' owner, which
// gives the chunks back (ChunkPool.Put) once no entry points into them
// (the worker's processor does, once an object's batch is committed). A
// chunk's memory is then written again: only entries whose every reader is
// done may be recycled this way.
type arena struct {
	chunk []byte // free space of the current chunk
	// mchunk is the free space of the current chunk of records' members
	// (Layout.Members); those chunks are left to the garbage collector.
	mchunk []Member
	pool   *ChunkPool
	used   Chunks // chunks drawn from pool since the last take
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
		if a.pool != nil {
			c := a.pool.get()
			a.used = append(a.used, c)
			a.chunk = c[:]
		} else {
			a.chunk = make([]byte, arenaChunk)
		}
	}
	b := a.chunk[:n:n]
	a.chunk = a.chunk[n:]
	return b
}

// memberChunk is how many members a chunk holds: about a hundred records'.
const memberChunk = 2048

// members returns room for n members that no one else holds. A nil arena
// allocates.
func (a *arena) members(n int) []Member {
	if n == 0 {
		return nil
	}
	if a == nil || n > memberChunk/4 {
		return make([]Member, n)
	}
	if n > len(a.mchunk) {
		a.mchunk = make([]Member, memberChunk)
	}
	ms := a.mchunk[:n:n]
	a.mchunk = a.mchunk[n:]
	return ms
}

// recycle makes the arena draw its chunks from pool (nil: allocate them,
// and leave them to the garbage collector). Chunks drawn and not taken are
// left to the garbage collector, and the next row starts a new chunk.
func (a *arena) recycle(pool *ChunkPool) {
	clear(a.used)
	a.used = a.used[:0]
	a.chunk = nil
	a.pool = pool
}

// take returns the chunks drawn from the pool since the last take or
// recycle, which hold every row handed out since then, and starts the next
// row in a new chunk, so that the chunks returned hold no later row.
func (a *arena) take() Chunks {
	used := a.used
	a.used = nil
	a.chunk = nil
	return used
}

// Recycle makes the Decoder carve the entries NextEntry returns from
// chunks drawn from pool (nil: allocated, and left to the garbage
// collector), until TakeChunks hands them over.
func (d *Decoder) Recycle(pool *ChunkPool) { d.arena.recycle(pool) }

// TakeChunks returns the chunks drawn from the pool since the last
// TakeChunks or Recycle, which hold every entry returned since then; the
// next entry starts in a new chunk. Give them back with ChunkPool.Put once
// no entry points into them.
func (d *Decoder) TakeChunks() Chunks { return d.arena.take() }

// Chunks are the arena chunks that a run of entries was carved from.
type Chunks []*[arenaChunk]byte

// ChunkPool keeps arena chunks for reuse. Its zero value is ready.
type ChunkPool struct{ p sync.Pool }

func (c *ChunkPool) get() *[arenaChunk]byte {
	if b, ok := c.p.Get().(*[arenaChunk]byte); ok {
		return b
	}
	return new([arenaChunk]byte)
}

// Put gives chunks back. No entry may point into them any more.
func (c *ChunkPool) Put(chunks Chunks) {
	for _, b := range chunks {
		c.p.Put(b)
	}
}

// bytesString returns b as a string without a copy. b must never be
// written again: true of what alloc returned once it is filled.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
