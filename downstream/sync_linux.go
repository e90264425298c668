package downstream

import "golang.org/x/sys/unix"

// fdatasync makes the written lines durable. fdatasync skips metadata such
// as mtime that a reader does not need, but still syncs the file size, so
// appended lines survive a crash.
func fdatasync(fd uintptr) error {
	for {
		err := unix.Fdatasync(int(fd))
		if err != unix.EINTR {
			return err
		}
	}
}
