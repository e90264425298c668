package downstream

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openFile(t testing.TB, path string) *File {
	t.Helper()
	f, err := OpenFile(path, 0)
	if err != nil {
		t.Fatalf("OpenFile: %s", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("file %s ends in a partial line", path)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestFileConcurrentForwards(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f := openFile(t, path)
	const n = 1000
	want := make(map[string]bool, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		ev := fmt.Sprintf(`{"event_id":"%06d","params":{"i":%d}}`, i, i)
		want[ev] = true
		wg.Go(func() {
			if err := f.Forward([]byte("id"), nil, []byte(ev), time.Now()); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Forward: %s", err)
	}
	lines := readLines(t, path)
	if len(lines) != n {
		t.Fatalf("file has %d lines; want %d", len(lines), n)
	}
	for _, l := range lines {
		if !want[l] {
			t.Fatalf("unexpected or repeated line %q", l)
		}
		delete(want, l)
	}
	st := f.Stats()
	if st.Events != n || st.Fsyncs == 0 || st.Fsyncs >= st.Events {
		t.Fatalf("Stats = %+v; want %d events sharing fewer fsyncs", st, n)
	}
	t.Logf("%d events, %d fsyncs, %.1f events per fsync", st.Events, st.Fsyncs, float64(st.Events)/float64(st.Fsyncs))
}

func TestFileSequentialForwardsDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f := openFile(t, path)
	for i := range 5 {
		ev := fmt.Sprintf(`{"i":%d}`, i)
		if err := f.Forward(nil, nil, []byte(ev), time.Now()); err != nil {
			t.Fatal(err)
		}
		// Forward returned: the line is in the file, and had its own fsync.
		lines := readLines(t, path)
		if len(lines) != i+1 || lines[i] != ev {
			t.Fatalf("after Forward %d the file holds %q", i, lines)
		}
		if st := f.Stats(); st.Fsyncs != uint64(i+1) || st.Events != uint64(i+1) {
			t.Fatalf("after Forward %d Stats = %+v", i, st)
		}
	}
}

func TestFileCloseThenForward(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f := openFile(t, path)
	if err := f.Forward(nil, nil, []byte(`{"a":1}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Forward(nil, nil, []byte(`{"a":2}`), time.Now()) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Forward after Close = %v; want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Forward after Close hangs")
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %s", err)
	}
	if lines := readLines(t, path); len(lines) != 1 {
		t.Fatalf("file holds %q; want the one event forwarded before Close", lines)
	}
}

// Close while Forwards wait: each either made it into the file or got
// ErrClosed, and none hangs.
func TestFileCloseDuringForwards(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f := openFile(t, path)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 200 {
		wg.Go(func() {
			err := f.Forward(nil, nil, []byte(`{"a":1}`), time.Now())
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("Forward: %s", err)
			}
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Millisecond)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if lines := readLines(t, path); len(lines) != ok {
		t.Fatalf("file has %d lines; %d Forwards returned nil", len(readLines(t, path)), ok)
	}
}

func TestFileOpen(t *testing.T) {
	t.Run("creates parent directories relative to the working directory", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		s, err := Open(Config{URL: "file:data/deep/events.jsonl"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Forward(nil, nil, []byte(`{"a":1}`), time.Now()); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, "data/deep/events.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o640 {
			t.Fatalf("file mode %v; want 0640", st.Mode().Perm())
		}
	})
	t.Run("ends a partial last line and appends", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.jsonl")
		if err := os.WriteFile(path, []byte("{\"old\":1}\n{\"torn"), 0o640); err != nil {
			t.Fatal(err)
		}
		f := openFile(t, path)
		if err := f.Forward(nil, nil, []byte(`{"new":1}`), time.Now()); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if want := "{\"old\":1}\n{\"torn\n{\"new\":1}\n"; string(b) != want {
			t.Fatalf("file holds %q; want %q", b, want)
		}
	})
	t.Run("file:/// form", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.jsonl")
		s, err := Open(Config{URL: "file://" + path})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.(*File).path != path {
			t.Fatalf("path %q; want %q", s.(*File).path, path)
		}
	})
}

// /dev/full fails every write with ENOSPC: a real failing file.
func TestFileWriteFailureIsSticky(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f := openFile(t, "/dev/full")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := f.Forward(nil, nil, []byte(`{"a":1}`), time.Now()); !errors.Is(err, ErrWrite) {
				t.Errorf("Forward to a failing file = %v; want ErrWrite", err)
			}
		})
	}
	wg.Wait()
	err := f.Forward(nil, nil, []byte(`{"a":1}`), time.Now())
	if !errors.Is(err, ErrWrite) || !strings.Contains(err.Error(), `cannot write events file "/dev/full"`) {
		t.Fatalf("Forward after a failure = %v; want the sticky write error", err)
	}
	if st := f.Stats(); st.Events != 0 {
		t.Fatalf("Stats = %+v; want no events counted", st)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("no space left")) {
		t.Logf("error: %s", err)
	}
}

func TestFileRefusesNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f := openFile(t, path)
	if err := f.Forward(nil, nil, []byte("{\"a\":\n1}"), time.Now()); !errors.Is(err, ErrRejected) {
		t.Fatalf("Forward of an event with a raw newline = %v; want ErrRejected", err)
	}
	if err := f.Forward(nil, nil, []byte(`{"a":1}`), time.Now()); err != nil {
		t.Fatalf("Forward after a refused event: %s", err)
	}
	if lines := readLines(t, path); len(lines) != 1 || lines[0] != `{"a":1}` {
		t.Fatalf("file holds %q", lines)
	}
}

func TestFileKeepsBuffersForTwoLargestEvents(t *testing.T) {
	if got, want := maxRetained(DefaultMaxEventBytes), 2*(4<<20+64<<10+1)+1<<20; got != want {
		t.Fatalf("maxRetained(default) = %d; want %d, two events of a 4 MiB body and 1 MiB more", got, want)
	}
	if got := maxRetained(1 << 30); got != maxRetainedCeiling {
		t.Fatalf("maxRetained(1 GiB) = %d; want the ceiling %d", got, maxRetainedCeiling)
	}
	tests := []struct {
		name     string
		maxEvent int // passed to Open; 0 is the default
		event    int // size of the one event of a batch
		kept     bool
	}{
		{"default cap, largest event", 0, DefaultMaxEventBytes, true},
		{"default cap, past two events", 0, maxRetained(DefaultMaxEventBytes) + 1, false},
		{"larger cap keeps its events", 16 << 20, 16 << 20, true},
		{"smaller cap lets go sooner", 64 << 10, 2 << 20, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(Config{URL: "file:" + filepath.Join(t.TempDir(), "events.jsonl"), MaxEventBytes: tc.maxEvent})
			if err != nil {
				t.Fatal(err)
			}
			f := s.(*File)
			defer f.Close()
			event := bytes.Repeat([]byte{'1'}, tc.event)
			// Twice: the second batch is written from a new buffer, and
			// the first one's, kept or not, is what it filled up.
			for range 2 {
				if err := f.Forward(nil, nil, event, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			// The flusher sets spare before it wakes the batch's waiters.
			f.mu.Lock()
			kept := cap(f.spare) >= tc.event
			f.mu.Unlock()
			if kept != tc.kept {
				t.Fatalf("batch buffer of a %d-byte event kept: %v; want %v (maxRetained %d)", tc.event, kept, tc.kept, f.maxRetained)
			}
		})
	}
}
