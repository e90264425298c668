package matcher

import "golang.org/x/sys/cpu"

// hasAVX2 selects the vectorized pair search; tests turn it off to check
// the generic one on the same inputs.
var hasAVX2 = cpu.X86.HasAVX2

// pairIndexAVX2 returns the first i in [0, len(t)-1) at which t[i] and
// t[i+1] may start a pair of the nibble tables nib (see groupSet), or -1.
// len(t) must be at least 33.
//
//go:noescape
func pairIndexAVX2(t []byte, nib *[64]byte) int
