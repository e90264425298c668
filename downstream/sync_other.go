//go:build !linux && !windows && !darwin

package downstream

import "syscall"

// fdatasync falls back to fsync where fdatasync is not available.
func fdatasync(fd uintptr) error {
	for {
		err := syscall.Fsync(int(fd))
		if err != syscall.EINTR {
			return err
		}
	}
}
