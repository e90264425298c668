//go:build !amd64

package matcher

var hasAVX2 = false

func pairIndexAVX2(t []byte, nib *[64]byte) int { panic("unreachable") }
