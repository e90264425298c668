//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package downstream

// peekSocket cannot look at a socket without reading it here: every idle
// connection is taken as clean, as fasthttp's own transport does.
func peekSocket(uintptr) sockState { return sockEmpty }

// canPeek: peekSocket cannot look here.
const canPeek = false
