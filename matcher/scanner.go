package matcher

// Scanner matches a body that arrives in pieces, so that a large body can
// be matched while it is read. Its result is the one Match gives for the
// concatenation of the pieces: keywords and escapes may be cut anywhere.
//
// The zero value is ready for use after Reset; Reset also makes a Scanner
// ready for the next body, reusing its buffers, so a Scanner is best kept
// (in a pool, or per connection) and reused. A Scanner is not safe for
// concurrent use; the Matcher it uses is.
type Scanner struct {
	m *Matcher
	n int // bytes written

	rawKW int // keyword found in the raw bytes, or -1
	// tail holds the last maxLen-1 bytes written: an occurrence that
	// starts in them and ends in the next piece is searched in bnd.
	tail  [MaxKeywordLen - 1]byte
	ntail int
	bnd   [2 * (MaxKeywordLen - 1)]byte

	ad     adapt // the raw search's, carried from chunk to chunk
	u      unescaper
	closed bool
	decKW  int
}

// Reset starts a new body, to be matched against m's keywords.
func (s *Scanner) Reset(m *Matcher) {
	s.m = m
	s.n = 0
	s.rawKW = -1
	s.ntail = 0
	s.ad = adapt{}
	s.u.reset(m)
	s.closed = false
	s.decKW = -1
}

// Write matches the next piece of the body. It does not keep chunk. Once a
// keyword is found in the raw bytes the result is settled and Write returns
// at once.
func (s *Scanner) Write(chunk []byte) {
	m := s.m
	if m == nil || len(m.keywords) == 0 || s.rawKW >= 0 || s.closed || len(chunk) == 0 {
		return
	}
	w := m.maxLen - 1
	kw, end := -1, 0
	if s.ntail > 0 {
		b := append(s.bnd[:0], s.tail[:s.ntail]...)
		b = append(b, chunk[:min(w, len(chunk))]...)
		// Nothing occurs within the tail alone, which has been searched
		// already, so what this finds ends in chunk.
		if k, e := m.find(b); k >= 0 {
			kw, end = k, s.n-s.ntail+e
		}
	}
	first := blockSize
	if s.n == 0 {
		first = firstBlockSize
	}
	if k, e := m.search(chunk, &s.ad, first); k >= 0 {
		if e += s.n; kw < 0 || e < end || (e == end && k < kw) {
			kw, end = k, e
		}
	}
	if kw >= 0 {
		s.rawKW = kw
		return
	}
	s.n += len(chunk)
	if len(chunk) >= w {
		s.ntail = copy(s.tail[:w], chunk[len(chunk)-w:])
	} else {
		if keep := w - len(chunk); s.ntail > keep {
			copy(s.tail[:], s.tail[s.ntail-keep:s.ntail])
			s.ntail = keep
		}
		s.ntail += copy(s.tail[s.ntail:], chunk)
	}
	// The decoded pass runs alongside: its result counts only if the raw
	// bytes hold no keyword until the end.
	s.u.write(chunk)
}

// Result ends the body and returns what Match returns for all the pieces
// written since Reset. Further writes are ignored until the next Reset;
// calling Result again returns the same. A Scanner that was never Reset
// reports no match.
func (s *Scanner) Result() (kw int, ok bool) {
	switch {
	case s.m == nil:
		return -1, false
	case len(s.m.keywords) == 0:
		return -1, true
	case s.rawKW >= 0:
		return s.rawKW, true
	}
	if !s.closed {
		s.closed = true
		s.decKW = s.u.close()
	}
	return s.decKW, s.decKW >= 0
}
