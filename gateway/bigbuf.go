package gateway

import "sync"

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

// bigBufferBytes bounds the capacity bigBuffers keeps between requests.
const bigBufferBytes = 256 << 20

// bigBuffers keeps the buffers of large bodies and their events between
// requests, so a run of megabyte bodies reuses memory: each such request
// used to allocate one or two buffers of its size, and under load the GC
// and the page faults of fresh memory took a fifth of the gateway's CPU
// (body_1m in the bench suite). It keeps at most bigBufferBytes of them,
// all of one size (bigBufferSize when they were made). The
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

// get returns an empty buffer with room for at least need bytes: a kept
// one, or a new one of size bytes (size ≥ need).
func (p *bigBuffers) get(need, size int) []byte {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.held -= cap(b)
		p.idle = min(p.idle, len(p.free))
		if cap(b) >= need {
			p.mu.Unlock()
			return b[:0]
		}
		// Made before max_body_bytes was raised: let it go.
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
