//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package downstream

import "syscall"

// peekSocket tells what the socket fd holds to read, neither reading nor
// waiting: nothing, bytes, or an end of stream or error.
func peekSocket(fd uintptr) sockState {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		return sockEmpty
	case err == nil && n > 0:
		return sockBytes
	}
	return sockClosed
}

// canPeek: peekSocket looks at a socket without reading it here.
const canPeek = true
