package gateway

import "golang.org/x/sys/cpu"

// hasAVX2 selects the vectorized string scan; tests turn it off to check
// the portable one on the same inputs.
var hasAVX2 = cpu.X86.HasAVX2

// skipPlainAVX2 returns the index of the first byte of b, among its whole
// 32-byte blocks, that a JSON string cannot hold as it is ('"', '\\' or a
// control character), or len(b) rounded down to 32 when there is none.
//
//go:noescape
func skipPlainAVX2(b []byte) int
