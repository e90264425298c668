//go:build !amd64

package gateway

var hasAVX2 = false

func skipPlainAVX2(b []byte) int { panic("unreachable") }
