package matcher

// dfa is an Aho-Corasick automaton compiled to a dense transition table
// over byte classes. It only has to find where the first keyword
// occurrence ends; Matcher.endingAt then tells which keyword it is, so
// states carry no output lists and states that complete a keyword have no
// outgoing transitions at all.
type dfa struct {
	// class maps a byte to its column. Bytes that occur in no keyword
	// share column 0; without case, both cases of a letter share one.
	class [256]uint32
	// trans[s+class[b]] is the state after reading b in state s. States
	// are stored premultiplied by the number of columns so that a step
	// is one add and one load.
	trans []uint32
	// States at or above matchFrom complete a keyword.
	matchFrom uint32
}

// buildDFA compiles keywords, which must be non-empty, into a dfa.
func buildDFA(keywords []string, ignoreCase bool) dfa {
	var d dfa
	fold := func(c byte) byte {
		if ignoreCase {
			return lower(c)
		}
		return c
	}
	ncol := uint32(1)
	for _, kw := range keywords {
		for i := 0; i < len(kw); i++ {
			if c := fold(kw[i]); d.class[c] == 0 {
				d.class[c] = ncol
				ncol++
			}
		}
	}
	if ignoreCase {
		for c := 'A'; c <= 'Z'; c++ {
			d.class[c] = d.class[c+'a'-'A']
		}
	}

	// The trie, with -1 for a missing child, then completed into the
	// automaton's transition function in breadth-first order.
	nodes := 1
	for _, kw := range keywords {
		nodes += len(kw)
	}
	next := make([]int32, nodes*int(ncol))
	for i := range next {
		next[i] = -1
	}
	match := make([]bool, nodes)
	n := int32(1)
	for _, kw := range keywords {
		s := int32(0)
		for i := 0; i < len(kw); i++ {
			c := int32(d.class[fold(kw[i])])
			if next[s*int32(ncol)+c] < 0 {
				next[s*int32(ncol)+c] = n
				n++
			}
			s = next[s*int32(ncol)+c]
		}
		match[s] = true
	}
	fail := make([]int32, n)
	order := make([]int32, 0, n)
	for c := int32(0); c < int32(ncol); c++ {
		if t := next[c]; t < 0 {
			next[c] = 0
		} else {
			order = append(order, t)
		}
	}
	for q := 0; q < len(order); q++ {
		s := order[q]
		match[s] = match[s] || match[fail[s]]
		for c := int32(0); c < int32(ncol); c++ {
			i := s*int32(ncol) + c
			if t := next[i]; t < 0 {
				next[i] = next[fail[s]*int32(ncol)+c]
			} else {
				fail[t] = next[fail[s]*int32(ncol)+c]
				order = append(order, t)
			}
		}
	}

	// Renumber: states that complete no keyword first, from the root,
	// then the ones that do, which need no row.
	id := make([]uint32, n)
	rows := uint32(0)
	for s := range n {
		if !match[s] {
			id[s] = rows
			rows++
		}
	}
	d.matchFrom = rows * ncol
	for s, m := uint32(0), rows; s < uint32(n); s++ {
		if match[s] {
			id[s] = m
			m++
		}
	}
	d.trans = make([]uint32, rows*ncol)
	for s := range n {
		if match[s] {
			continue
		}
		for c := uint32(0); c < ncol; c++ {
			d.trans[id[s]*ncol+c] = id[next[uint32(s)*ncol+c]] * ncol
		}
	}
	return d
}

// scan feeds t to the automaton from state s. When a keyword is completed
// it returns the number of bytes read up to and including that one and
// found true; otherwise len(t) and the state reached.
func (d *dfa) scan(s uint32, t []byte) (n int, state uint32, found bool) {
	trans, class, matchFrom := d.trans, &d.class, d.matchFrom
	for i, b := range t {
		s = trans[s+class[b]]
		if s >= matchFrom {
			return i + 1, s, true
		}
	}
	return len(t), s, false
}
