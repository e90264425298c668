package matcher

// groupSet is what a prefilter pass looks for: each keyword by a pair of
// its adjacent bytes, the rarest pair by a static table or by a sample of
// the text, the keywords sorted into at most eight buckets. A position is a candidate when its byte is the first of a
// bucket's pair and the next byte the second; a pair of rare bytes comes
// far more seldom than either byte, so verifying candidates costs little.
//
// On amd64 with AVX2, pairIndexAVX2 tests 32 positions at a time in the
// manner of Hyperscan's Teddy: each of the two bytes is split into its
// nibbles, each nibble looks up a byte of bucket bits (VPSHUFB), and a
// position is a candidate where the four lookups share a bit. Nibbles
// lose some precision, which the exact tables first and second restore.
type groupSet struct {
	// groups are the buckets; their cands and offsets point into c, the
	// offset being that of the pair's first byte.
	groups []group
	g      [8]group
	c      [MaxKeywords]cand
	// first[b] and second[b] have bit i set when b is the first or the
	// second byte of a pair of bucket i (either case, when ignoring it).
	// A one-byte keyword's bucket takes any second byte, and is in
	// single too.
	first, second [256]uint8
	single        uint8
	// nib holds the same by nibble: the low and the high nibble of the
	// first byte, then of the second, 16 entries each.
	nib [64]byte
}

// set makes gs look for m's keywords, each by its adjacent pair that
// pairCost deems cheapest (the first among equals); pairCost(k, o) is the
// cost of keyword k's pair at offset o. byteCost ranks single bytes, to
// choose the byte checked before a whole keyword. Keywords with the same
// pair share a bucket; beyond eight pairs, buckets are shared by pairs
// with the same first byte, or else in turn.
func (gs *groupSet) set(m *Matcher, pairCost func(k, o int) int, byteCost func(b byte) int) {
	*gs = groupSet{}
	type pick struct {
		c      cand
		c0, c1 byte // the pair, folded; c1 unused for a one-byte keyword
		bucket int
	}
	var picks [MaxKeywords]pick
	var keys [8]struct {
		c0, c1 byte
		one    bool
	}
	nb := 0
	for k, kw := range m.keywords {
		f := func(i int) byte { return m.fold[kw[i]] }
		pk := pick{c: cand{kw: int32(k), n: int32(len(kw))}, c0: f(0)}
		one := len(kw) == 1
		if !one {
			o, best := 0, pairCost(k, 0)
			for i := 1; i+1 < len(kw); i++ {
				if c := pairCost(k, i); c < best {
					o, best = i, c
				}
			}
			pk.c.off, pk.c0, pk.c1 = int32(o), f(o), f(o+1)
		}
		// The byte checked before the whole keyword is the rarest outside
		// the pair, when there is one.
		off2 := int(pk.c.off)
		for i := range len(kw) {
			if i != off2 && i != int(pk.c.off)+1 && (off2 == int(pk.c.off) || byteCost(f(i)) < byteCost(f(off2))) {
				off2 = i
			}
		}
		pk.c.off2, pk.c.b2 = int32(off2), f(off2)
		pk.bucket = -1
		for i := range nb {
			if keys[i].c0 == pk.c0 && keys[i].one == one && (one || keys[i].c1 == pk.c1) {
				pk.bucket = i
			}
		}
		if pk.bucket < 0 && nb < len(keys) {
			keys[nb].c0, keys[nb].c1, keys[nb].one = pk.c0, pk.c1, one
			pk.bucket = nb
			nb++
		}
		if pk.bucket < 0 {
			pk.bucket = k % len(keys)
			for i := range nb {
				if keys[i].c0 == pk.c0 {
					pk.bucket = i
				}
			}
		}
		picks[k] = pk
	}
	// Lay the cands out bucket by bucket and fill the tables.
	nc := 0
	gs.groups = gs.g[:0]
	for bk := range nb {
		first := nc
		bit := uint8(1) << bk
		for _, pk := range picks[:len(m.keywords)] {
			if pk.bucket != bk {
				continue
			}
			gs.c[nc] = pk.c
			nc++
			v0, n0 := m.variants(pk.c0)
			for _, v := range v0[:n0] {
				gs.first[v] |= bit
			}
			if pk.c.n == 1 {
				gs.single |= bit
				for v := range gs.second {
					gs.second[v] |= bit
				}
				continue
			}
			v1, n1 := m.variants(pk.c1)
			for _, v := range v1[:n1] {
				gs.second[v] |= bit
			}
		}
		gs.groups = append(gs.groups, group{b: keys[bk].c0, cands: gs.c[first:nc:nc]})
	}
	for v := range 256 {
		for i, tab := range [2]*[256]uint8{&gs.first, &gs.second} {
			if bs := tab[v]; bs != 0 {
				gs.nib[32*i+v&0x0f] |= bs
				gs.nib[32*i+16+v>>4] |= bs
			}
		}
	}
}

// variants returns the bytes that fold to b: b, and its capital when
// ignoring case.
func (m *Matcher) variants(b byte) (v [2]byte, n int) {
	if m.ignoreCase && upper(b) != b {
		return [2]byte{b, upper(b)}, 2
	}
	return [2]byte{b}, 1
}

// next returns the first position q in [p, lim) where a pair of gs starts,
// and the buckets whose pair it is; or -1 and 0. The pair of a position
// before lim may end at lim, so t must extend past lim when it can.
func (gs *groupSet) next(t []byte, p, lim int) (int, uint8) {
	// Positions with a byte after them, up to lim.
	hi := min(lim+1, len(t))
	for p < hi-1 {
		if hasAVX2 && hi-p >= 33 {
			j := pairIndexAVX2(t[p:hi], &gs.nib)
			if j < 0 {
				p = hi - 1
				break
			}
			p += j
		} else {
			// Skip 8 positions at a time while none starts a pair.
			first := &gs.first
			for p+8 <= hi-1 {
				q := t[p : p+8 : p+8]
				if first[q[0]]|first[q[1]]|first[q[2]]|first[q[3]]|first[q[4]]|first[q[5]]|first[q[6]]|first[q[7]] != 0 {
					break
				}
				p += 8
			}
			if p >= hi-1 {
				break
			}
		}
		if bs := gs.first[t[p]] & gs.second[t[p+1]]; bs != 0 {
			return p, bs
		}
		p++
	}
	// The text's last byte starts no pair; only a one-byte keyword can
	// be there.
	if p < lim && p == len(t)-1 {
		if bs := gs.first[t[p]] & gs.single; bs != 0 {
			return p, bs
		}
	}
	return -1, 0
}
