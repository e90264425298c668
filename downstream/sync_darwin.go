package downstream

import "golang.org/x/sys/unix"

// fdatasync makes the written lines durable. On macOS fsync only hands
// the data to the drive, whose cache may still lose it; F_FULLFSYNC asks
// the drive to write it out, as os.File.Sync does there.
func fdatasync(fd uintptr) error {
	for {
		_, err := unix.FcntlInt(fd, unix.F_FULLFSYNC, 0)
		if err != unix.EINTR {
			return err
		}
	}
}
