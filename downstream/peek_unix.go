//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package downstream

import "syscall"

// peekPending reports whether the socket fd has anything to read: bytes,
// an end of stream, or an error. It neither reads nor waits.
func peekPending(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR {
		return false
	}
	// n > 0: bytes; n == 0 without an error: the engine closed it.
	return err != nil || n >= 0
}
