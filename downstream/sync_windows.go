package downstream

import "syscall"

// fdatasync flushes the file's buffers to disk.
func fdatasync(fd uintptr) error {
	return syscall.FlushFileBuffers(syscall.Handle(fd))
}
