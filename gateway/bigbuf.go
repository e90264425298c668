package gateway

import (
	"math/bits"
	"sync"
)

// maxPooledBody keeps pooled states from pinning big body buffers: a body
// or event longer than it is read or built in a buffer borrowed from the
// gateway's bigBuffers instead, and handed back when the request ends.
const maxPooledBody = 1 << 20

// bigSlack is what a big buffer holds beyond max_body_bytes+1, so that one
// buffer serves a body or the event built around it: the envelope's
// fields take a few hundred bytes, and a Client-Token or loop marker at
// most the header's size.
const bigSlack = 64 << 10

// bigBufferSize is the size of a big buffer for a body cap of maxBody: it
// holds the largest body, with one byte to tell it from a longer one, or
// the event built around it.
func bigBufferSize(maxBody int) int { return maxBody + 1 + bigSlack }

// bigBufferFor is the size of a new big buffer for need bytes: need
// rounded up to a power of two, so that buffers are reused across bodies
// of like sizes, or bigBufferSize, which serves any body, once that power
// reaches the cap. A buffer is sized by what it holds, not by the cap:
// with the cap raised to 1 GiB, a body of a little over 1 MiB takes 2 MiB.
func bigBufferFor(need, maxBody int) int {
	size := 1 << bits.Len(uint(need-1))
	if size >= maxBody {
		size = bigBufferSize(maxBody)
	}
	return max(need, size)
}

// bigBufferBytes bounds the capacity bigBuffers keeps between requests.
const bigBufferBytes = 256 << 20

// bigBuffers keeps the buffers of large bodies and their events between
// requests, so a run of megabyte bodies reuses memory: each such request
// used to allocate one or two buffers of its size, and under load the GC
// and the page faults of fresh memory took a fifth of the gateway's CPU
// (body_1m in the bench suite). It keeps at most bigBufferBytes of them,
// of the sizes bigBufferFor gives, the most recently kept on top. The
// janitor trims the buffers that went unused for a whole interval, so a
// burst's buffers are let go while a trickle of large bodies goes on, and
// empties it once large bodies stop coming. It is safe for concurrent use;
// a sync.Pool is not used because the GC would empty it in the middle of
// such a run, which is when it is needed.
type bigBuffers struct {
	mu   sync.Mutex
	free [][]byte
	held int // capacity, in bytes, of the buffers in free
	// idle is the fewest buffers free since the last trim: that many
	// were not needed during the interval.
	idle int
}

// get returns an empty buffer with room for at least need bytes: the
// kept one nearest the top that has it, or a new one of size bytes
// (size ≥ need).
func (p *bigBuffers) get(need, size int) []byte {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		b := p.free[i]
		if cap(b) < need {
			continue
		}
		n := copy(p.free[i:], p.free[i+1:])
		p.free[i+n] = nil
		p.free = p.free[:i+n]
		p.held -= cap(b)
		p.idle = min(p.idle, len(p.free))
		p.mu.Unlock()
		return b[:0]
	}
	p.mu.Unlock()
	return make([]byte, 0, max(need, size))
}

// put keeps b for a later get unless that would hold more than
// bigBufferBytes.
func (p *bigBuffers) put(b []byte) {
	p.mu.Lock()
	if p.held+cap(b) <= bigBufferBytes {
		if p.free == nil {
			p.free = make([][]byte, 0, bigBufferBytes/maxPooledBody)
		}
		p.free = append(p.free, b[:0])
		p.held += cap(b)
	}
	p.mu.Unlock()
}

// drain lets every kept buffer go.
func (p *bigBuffers) drain() {
	p.mu.Lock()
	clear(p.free)
	p.free = p.free[:0]
	p.held, p.idle = 0, 0
	p.mu.Unlock()
}

// trim lets go of the buffers that stayed free since the last trim, the
// longest kept first, and returns how many bytes they held.
func (p *bigBuffers) trim() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.idle
	freed := 0
	for _, b := range p.free[:n] {
		freed += cap(b)
	}
	k := copy(p.free, p.free[n:])
	clear(p.free[k:])
	p.free = p.free[:k]
	p.held -= freed
	p.idle = len(p.free)
	return freed
}

// len reports how many buffers are kept.
func (p *bigBuffers) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}
