package matcher

import (
	"bytes"
	"sync"
	"unicode/utf8"
)

// unescaper runs the decoded pass: it decodes the JSON escapes of a body
// that arrives in one or more pieces and searches the keywords in the
// decoded text.
//
// It relies on the raw pass having found no keyword. Then every occurrence
// in the decoded text includes a byte produced by an escape, and so lies
// within maxLen-1 bytes of one: the unescaper copies only the escapes'
// output and the plain bytes around them, at most maxLen-1 on each side, and
// searches each stretch on its own. A body with a few escapes is thus
// searched a second time only around them; one made of escapes is decoded
// and searched in whole.
type unescaper struct {
	m *Matcher
	w int // maxLen-1: the context an escape needs on each side

	// seg is the stretch being collected; when it fills up it is searched
	// and all but its last w bytes dropped.
	seg []byte
	// after is how many more plain bytes go into the stretch after the
	// last escape: its context, and up to bridge more, so that escapes a
	// few plain bytes apart share a stretch instead of costing a search
	// each. Plain bytes beyond it are dropped, but skipped counts them
	// and tail keeps the last w, the context of the next escape.
	after   int
	skipped int
	tail    [MaxKeywordLen]byte
	ntail   int
	// pend holds an escape cut by the end of a piece. 12 bytes, a
	// surrogate pair, are enough to decide any escape.
	pend  [12]byte
	npend int

	found int   // keyword found, or -1
	ad    adapt // carried from one stretch to the next
	pl    *plan // the plan ad uses, kept with the buffer
}

// bridge is how many plain bytes past an escape's context a stretch goes
// on for, waiting for the next escape. Searching them again costs less
// than starting a new search.
const bridge = 256

// segSize is the length at which a stretch is searched; small enough for
// the L1 cache, large enough that a search's fixed cost stays small.
const segSize = 16 << 10

var unescaperPool sync.Pool // of *unescaper

// getUnescaper returns a pooled unescaper reset for m. Return it with
// putUnescaper once its result has been read.
func getUnescaper(m *Matcher) *unescaper {
	u, _ := unescaperPool.Get().(*unescaper)
	if u == nil {
		u = new(unescaper)
	}
	u.reset(m)
	return u
}

// putUnescaper returns u to the pool without keeping m.
func putUnescaper(u *unescaper) {
	u.reset(nil)
	unescaperPool.Put(u)
}

// reset prepares u to decode a new body for m, keeping its buffer.
func (u *unescaper) reset(m *Matcher) {
	if u.seg == nil {
		u.seg = make([]byte, 0, segSize+MaxKeywordLen+utf8.UTFMax)
		u.pl = new(plan)
	}
	*u = unescaper{m: m, seg: u.seg[:0], found: -1, pl: u.pl}
	u.pl.left = 0
	u.ad = adapt{p: u.pl, planMin: planMinKept}
	if m != nil {
		u.w = m.maxLen - 1
	}
}

// write decodes p, the next piece of the body. An escape cut at the end of
// p is kept until the next write or close.
func (u *unescaper) write(p []byte) {
	for len(p) > 0 && u.found < 0 {
		if u.npend > 0 {
			old := u.npend
			k := copy(u.pend[old:], p)
			n, ok := u.escape(u.pend[:old+k], false)
			if !ok {
				// Still undecided: all of p fit in pend.
				u.npend += k
				return
			}
			u.npend = 0
			if n >= old {
				p = p[n-old:]
				continue
			}
			// The escape ended inside the bytes held back before p (a
			// high surrogate followed by something else): they start
			// afresh.
			var rest [len(u.pend)]byte
			r := copy(rest[:], u.pend[n:old])
			u.write(rest[:r])
			continue
		}
		if p[0] != '\\' {
			// Escaped text has short runs between escapes: look at a
			// few bytes before paying for a call.
			i := 1
			for i < len(p) && i < 8 && p[i] != '\\' {
				i++
			}
			if i == 8 {
				if j := bytes.IndexByte(p[i:], '\\'); j < 0 {
					i = len(p)
				} else {
					i += j
				}
			}
			u.plain(p[:i])
			p = p[i:]
			if len(p) == 0 {
				return
			}
		}
		u.closeGap()
		// The common escapes, which often come in runs, are decoded
		// here; the rest, and escapes cut by the end of p, by escape.
		if n := u.escapeRun(p); n > 0 {
			p = p[n:]
			continue
		}
		n, ok := u.escape(p, false)
		if !ok {
			u.npend = copy(u.pend[:], p)
			return
		}
		p = p[n:]
	}
}

// close ends the body and returns the keyword found in the decoded text,
// chosen by the package's rule, or -1.
func (u *unescaper) close() int {
	for u.npend > 0 && u.found < 0 {
		n, _ := u.escape(u.pend[:u.npend], true)
		var rest [len(u.pend)]byte
		r := copy(rest[:], u.pend[n:u.npend])
		u.npend = 0
		u.write(rest[:r])
	}
	u.search()
	return u.found
}

// escapeRun decodes the run of two-byte escapes and \uXXXX escapes
// outside the surrogate range at the start of p, as long as the stretch has
// room, and returns how many bytes it took.
func (u *unescaper) escapeRun(p []byte) int {
	// The output is written in place: seg has room for the UTF-8 of one
	// more escape beyond segSize.
	buf := u.seg[:cap(u.seg)]
	n, i := len(u.seg), 0
	for n < segSize && i+6 <= len(p) && p[i] == '\\' {
		if c := shortEscape[p[i+1]]; c != 0 {
			buf[n] = c
			n++
			i += 2
			continue
		}
		if p[i+1] != 'u' {
			break
		}
		h := p[i+2 : i+6 : i+6]
		r := hexVal[h[0]]<<12 | hexVal[h[1]]<<8 | hexVal[h[2]]<<4 | hexVal[h[3]]
		switch {
		case r < 0 || 0xd800 <= r && r < 0xe000:
			return u.endRun(buf, n, i)
		case r < 0x80:
			buf[n] = byte(r)
			n++
		case r < 0x800:
			o := buf[n : n+2 : n+2]
			o[0], o[1] = 0xc0|byte(r>>6), 0x80|byte(r)&0x3f
			n += 2
		default:
			o := buf[n : n+3 : n+3]
			o[0], o[1], o[2] = 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f
			n += 3
		}
		i += 6
	}
	return u.endRun(buf, n, i)
}

// endRun ends escapeRun, which wrote buf up to n and took i bytes.
func (u *unescaper) endRun(buf []byte, n, i int) int {
	if i > 0 {
		u.seg = buf[:n]
		u.after = u.w + bridge
	}
	return i
}

// escape decodes the escape at the start of p, which begins with a
// backslash, and returns how many bytes it took. Unless final, it returns
// ok false when p is too short to tell what the escape is.
func (u *unescaper) escape(p []byte, final bool) (n int, ok bool) {
	if len(p) < 2 {
		if !final {
			return 0, false
		}
		u.plain(p[:1])
		return 1, true
	}
	if p[1] == 'u' {
		return u.escapeU(p, final)
	}
	c := ShortEscape(p[1])
	if c == 0 {
		// Malformed: the backslash stays, and what follows it is read
		// as usual.
		u.plain(p[:1])
		return 1, true
	}
	u.decoded([]byte{c})
	return 2, true
}

// escapeU decodes the \uXXXX escape, or surrogate pair of them, at the
// start of p, like escape.
func (u *unescaper) escapeU(p []byte, final bool) (n int, ok bool) {
	r, st := hex4(p[2:])
	switch {
	case st == hexShort && !final:
		return 0, false
	case st != hexOK:
		u.plain(p[:1])
		return 1, true
	}
	n = 6
	if 0xd800 <= r && r < 0xdc00 {
		// A high surrogate: a low one must follow to make a pair;
		// otherwise it decodes to U+FFFD and what follows is read as
		// usual, as encoding/json does.
		q := p[6:]
		if len(q) < 6 && !final && couldBeEscapeU(q) {
			return 0, false
		}
		hi := r
		r = utf8.RuneError
		if len(q) >= 2 && q[0] == '\\' && q[1] == 'u' {
			if lo, st := hex4(q[2:]); st == hexOK && 0xdc00 <= lo && lo < 0xe000 {
				r = 0x10000 + (hi-0xd800)<<10 + (lo - 0xdc00)
				n = 12
			}
		}
	} else if 0xdc00 <= r && r < 0xe000 {
		r = utf8.RuneError
	}
	var buf [utf8.UTFMax]byte
	u.decoded(utf8.AppendRune(buf[:0], r))
	return n, true
}

const (
	hexOK = iota
	hexShort
	hexBad
)

// ShortEscape returns what the two-byte JSON escape of c (\n for 'n',
// \" for '"', ...) stands for, or 0 when backslash c is not one.
func ShortEscape(c byte) byte { return shortEscape[c] }

var shortEscape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hexVal maps a hex digit to its value and any other byte to a value that
// makes the rune decoded from it negative: -1<<16 keeps the sign bit when
// shifted left by up to 12 (-1<<20 would lose it, all its set bits shifted
// out of the 32, for the first of the four digits).
var hexVal = func() (t [256]rune) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = rune(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = rune(c - 'A' + 10)
		default:
			t[c] = -1 << 16
		}
	}
	return t
}()

// hex4 parses the 4 hex digits at the start of p. It reports hexShort when
// p holds fewer than 4 bytes that are all hex digits, hexBad when a byte
// among the first 4 is not one.
func hex4(p []byte) (r rune, status int) {
	for i := range 4 {
		if i == len(p) {
			return 0, hexShort
		}
		c := p[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, hexBad
		}
		r = r<<4 | rune(c)
	}
	return r, hexOK
}

// couldBeEscapeU reports whether p, shorter than 6 bytes, may be the start
// of a \uXXXX escape.
func couldBeEscapeU(p []byte) bool {
	if len(p) >= 1 && p[0] != '\\' {
		return false
	}
	if len(p) >= 2 && p[1] != 'u' {
		return false
	}
	if len(p) > 2 {
		_, st := hex4(p[2:])
		return st == hexShort
	}
	return true
}

// plain takes bytes copied from the body as they are. Only the first
// u.after of them, and the last w before the next escape, can be part of
// an occurrence.
func (u *unescaper) plain(p []byte) {
	if u.after > 0 {
		a := min(len(p), u.after)
		u.put(p[:a])
		u.after -= a
		p = p[a:]
	}
	if len(p) == 0 || u.w == 0 {
		u.skipped += len(p)
		return
	}
	u.skipped += len(p)
	if len(p) >= u.w {
		u.ntail = copy(u.tail[:u.w], p[len(p)-u.w:])
		return
	}
	if keep := u.w - len(p); u.ntail > keep {
		copy(u.tail[:], u.tail[u.ntail-keep:u.ntail])
		u.ntail = keep
	}
	u.ntail += copy(u.tail[u.ntail:], p)
}

// decoded takes the output of one escape.
func (u *unescaper) decoded(p []byte) {
	u.closeGap()
	u.put(p)
	u.after = u.w + bridge
}

// closeGap is called before an escape's output: it brings in the context
// the escape needs before it, the plain bytes held in tail. When more were
// dropped, the stretch so far is searched and a new one begun, since no
// occurrence spans the bytes dropped. Bringing in context early, before a
// backslash that turns out to be kept as it is, is harmless: the stretch
// holds decoded text either way.
func (u *unescaper) closeGap() {
	if u.skipped == 0 {
		return
	}
	if u.skipped > u.ntail {
		u.search()
		u.seg = u.seg[:0]
	}
	u.put(u.tail[:u.ntail])
	u.skipped, u.ntail = 0, 0
}

// put appends p to the stretch, searching it when it is full.
func (u *unescaper) put(p []byte) {
	u.seg = append(u.seg, p...)
	if len(u.seg) >= segSize {
		u.search()
		// Occurrences may go on into what comes next.
		n := copy(u.seg, u.seg[len(u.seg)-u.w:])
		u.seg = u.seg[:n]
	}
}

// search searches the stretch. Everything before it has been searched
// already, so the first occurrence it finds is the one sought.
func (u *unescaper) search() {
	if u.found < 0 && len(u.seg) > 0 {
		u.found, _ = u.m.search(u.seg, &u.ad, blockSize)
	}
}
