package downstream

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchOpen watches dir with inotify and returns a function that reports
// whether dir itself has been opened since: syncDir opens a directory to
// fsync it, and neither os.MkdirAll nor opening a file inside it does.
func watchOpen(t *testing.T, dir string) (opened func() bool) {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("no inotify: %s", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	return func() bool {
		var buf [64 * (unix.SizeofInotifyEvent + unix.PathMax)]byte
		n, err := unix.Read(fd, buf[:])
		if err == unix.EAGAIN {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_ISDIR != 0 && ev.Len == 0 {
				return true // the watched directory itself, not an entry in it
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		return false
	}
}

// Every directory entry OpenFile makes must be durable before an event is
// acknowledged: the file's in its directory, and that of each directory
// it creates in its parent. A crash that loses "data" in the working
// directory loses "data/events.jsonl" with every fsynced line in it.
func TestFileOpenSyncsDirectoryEntries(t *testing.T) {
	tests := []struct {
		name   string
		path   string // under the watched directory
		exists bool   // the file is there already
	}{
		{"new file in the directory", "events.jsonl", false},
		{"new file in new directories", "a/b/events.jsonl", false},
		// Left by a start that failed or died before it synced the
		// directory, or made by hand just before this one.
		{"file that exists", "events.jsonl", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			if tc.exists {
				if err := os.WriteFile(filepath.Join(base, tc.path), []byte("{\"old\":1}\n"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			opened := watchOpen(t, base)
			openFile(t, filepath.Join(base, tc.path))
			if !opened() {
				t.Fatalf("OpenFile(%q) did not sync %s, which holds its entry or that of a directory it created", tc.path, base)
			}
		})
	}
}
