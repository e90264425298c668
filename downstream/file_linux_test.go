package downstream

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// A write cut short: the file size limit lets the first bytes of a batch
// in and fails the rest with EFBIG, as a disk that fills up mid-write
// does with ENOSPC. The acknowledged line stays whole, the refused
// event's part is cut off again, the sink refuses events until it is
// reopened, and the next event after that starts a line of its own.
func TestFileShortWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f := openFile(t, path)
	acked := `{"acked":1}`
	if err := f.Forward(nil, nil, []byte(acked), time.Now()); err != nil {
		t.Fatal(err)
	}

	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(restore)
	limit := old
	limit.Cur = uint64(len(acked) + 1 + 5)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &limit); err != nil {
		t.Skipf("cannot limit the file size: %s", err)
	}
	err := f.Forward(nil, nil, []byte(`{"torn":12345}`), time.Now())
	restore()
	if !errors.Is(err, ErrWrite) || !errors.Is(err, unix.EFBIG) {
		t.Fatalf("Forward cut short by the size limit = %v; want ErrWrite with EFBIG", err)
	}
	// The refused event's part is cut off again: a reader finds only
	// the acknowledged event.
	kept := acked + "\n"
	if b, _ := os.ReadFile(path); string(b) != kept {
		t.Fatalf("after the short write the file holds %q; want only the acknowledged event, %q", b, kept)
	}

	// There is room again, but the sink does not know what it lost.
	if err := f.Forward(nil, nil, []byte(`{"after":1}`), time.Now()); !errors.Is(err, ErrWrite) {
		t.Fatalf("Forward after a short write = %v; want the sticky ErrWrite", err)
	}
	if err := f.Ready(0); !errors.Is(err, ErrWrite) {
		t.Fatalf("Ready after a short write = %v; want ErrWrite", err)
	}
	if b, _ := os.ReadFile(path); string(b) != kept {
		t.Fatalf("a refused event reached the file: %q", b)
	}
	if st := f.Stats(); st.Events != 1 {
		t.Fatalf("Stats = %+v; want the one acknowledged event", st)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	f = openFile(t, path)
	if err := f.Forward(nil, nil, []byte(`{"next":1}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != kept+`{"next":1}`+"\n" {
		t.Fatalf("after reopening the file holds %q; want the next event on a line of its own", b)
	}
}
