package downstream

import "syscall"

// fdatasync flushes the file's buffers to disk.
func fdatasync(fd uintptr) error {
	return syscall.FlushFileBuffers(syscall.Handle(fd))
}

// syncDir does nothing: Windows cannot flush a directory opened for
// reading (the call is refused with "Access is denied"), and NTFS
// journals the creation of a file's entry itself.
func syncDir(string) error { return nil }
