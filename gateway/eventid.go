package gateway

import (
	"math/rand/v2"
	"sync/atomic"
)

// eventIDs issues UUIDv7 event ids (RFC 9562): 48 bits of Unix
// milliseconds, then a 12-bit counter in rand_a that makes ids issued in
// the same millisecond sort in issue order (RFC 9562 §6.2, method 1), then
// 62 random bits. Ids of one process are strictly increasing; ids of
// different processes are unique with overwhelming probability.
type eventIDs struct {
	// last is the most recent (ms<<12 | counter) handed out.
	last atomic.Uint64
}

// next appends a new id, in its 36-character text form, to dst.
func (g *eventIDs) next(dst []byte, unixMilli int64) []byte {
	now := uint64(unixMilli) << 12
	var v uint64
	for {
		last := g.last.Load()
		v = max(now, last+1)
		if g.last.CompareAndSwap(last, v) {
			break
		}
	}
	ms := v >> 12
	seq := v & 0xfff
	r := rand.Uint64()
	var u [16]byte
	u[0] = byte(ms >> 40)
	u[1] = byte(ms >> 32)
	u[2] = byte(ms >> 24)
	u[3] = byte(ms >> 16)
	u[4] = byte(ms >> 8)
	u[5] = byte(ms)
	u[6] = 0x70 | byte(seq>>8)
	u[7] = byte(seq)
	u[8] = 0x80 | byte(r>>56)&0x3f
	for i := 9; i < 16; i++ {
		u[i] = byte(r >> (8 * (15 - i)))
	}
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}
