package downstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// File is a Sink that appends each event as one line (the event and '\n')
// to a local file and returns only once the line is durable.
//
// Group commit: an fsync costs about as much for one line as for a
// thousand, so Forwards that arrive together share one. Forward appends its
// line to a pending buffer and waits; a single flusher goroutine takes the
// whole buffer (swapping in a spare one), writes it with one write, calls
// fdatasync, and wakes the waiters of exactly that batch. While it works,
// the next batch fills up. Waiters of batch n wait on done[n%2]: at most two
// batches exist at a time (one being written, one filling), so a broadcast
// wakes no one from the other batch, and nothing is allocated per event.
//
// Failure: if the write or fdatasync fails, every waiter of that batch (and
// of the one filling behind it) gets the error, and the sink refuses all
// further events until it is reopened. Retrying is unsafe: after a failed
// fsync Linux may already have dropped the dirty pages and reports success
// for the next fsync, so a second attempt could call lost lines durable.
// The failed batch is cut off the file again (cutBack), so no line of an
// event answered with an error stays in it; should that fail too, a failed
// write may leave a partial last line, which OpenFile ends with '\n' so it
// never merges with the next event, and a reader skips lines that are not
// valid JSON.
//
// The file sink ignores eventID and loop: the event already carries both.
type File struct {
	file *os.File
	fd   uintptr // file's descriptor, kept for fdatasync
	path string

	mu      sync.Mutex
	work    sync.Cond    // the flusher waits here for a pending batch or Close
	done    [2]sync.Cond // waiters of batch n wait on done[n%2]
	pending []byte       // the batch filling up, guarded by mu
	pendN   uint64       // events in pending, guarded by mu
	spare   []byte       // the buffer written last, reused for the next batch, guarded by mu
	filling uint64       // sequence number of the pending batch, from 1, guarded by mu
	flushed uint64       // sequence number of the last batch finished, guarded by mu
	err     error        // first write or fsync failure, sticky, guarded by mu
	errSeq  uint64       // the batch that failed, guarded by mu
	closed  bool         // guarded by mu

	maxRetained int // the largest batch buffer kept for the next batch

	flusherDone chan struct{}

	events atomic.Uint64
	fsyncs atomic.Uint64
	bytes  atomic.Uint64
}

var _ Sink = (*File)(nil)

// maxRetained is the largest batch buffer the sink keeps between batches,
// for events of up to maxEvent bytes: one that holds two of the largest
// events, and 1 MiB of smaller ones beside them, so a run of the largest
// bodies reuses the sink's two buffers instead of allocating a batch
// each. It never exceeds maxRetainedCeiling, so a gateway with a huge body
// cap does not pin gigabytes after one burst; its largest batches are
// allocated each time instead.
func maxRetained(maxEvent int) int {
	return min(2*(maxEvent+1)+1<<20, maxRetainedCeiling)
}

// maxRetainedCeiling bounds each of the two kept batch buffers.
const maxRetainedCeiling = 64 << 20

var errNewline = &kindError{kind: ErrRejected, msg: "cannot append event to events file: it holds a raw newline, which would split its line"}

// OpenFile opens (creating it and its parent directories) the events file
// at path, relative to the working directory, for appending with mode 0640,
// and starts its flusher. maxEvent is the size of the largest event the
// sink will be given (Config.MaxEventBytes); it sizes the buffers kept
// between batches, and 0 or less means DefaultMaxEventBytes.
func OpenFile(path string, maxEvent int) (*File, error) {
	if maxEvent <= 0 {
		maxEvent = DefaultMaxEventBytes
	}
	dir := filepath.Dir(path)
	// The directories whose entries a new file adds to: its own, and the
	// parent of each directory MkdirAll is about to create for it.
	entryDirs := []string{dir}
	for d := dir; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		entryDirs = append(entryDirs, filepath.Dir(d))
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("downstream.url: cannot create directory %q: %w", dir, err)
	}
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("downstream.url: cannot open %q: %w", path, err)
	}
	if err := endLastLine(fh); err != nil {
		fh.Close()
		return nil, fmt.Errorf("downstream.url: cannot prepare %q: %w", path, err)
	}
	// The file's directory entry must be durable too, or a crash could
	// lose the whole file with every fsynced line in it; and so must the
	// entry of each directory created for it. The directory is synced even
	// when the file was there: a start that failed or died before syncing
	// it, or a hand that made the file just now, leaves an entry that may
	// not be durable yet.
	for _, d := range entryDirs {
		if err := syncDir(d); err != nil {
			fh.Close()
			return nil, fmt.Errorf("downstream.url: cannot sync directory %q: %w", d, err)
		}
	}
	f := &File{
		file:        fh,
		fd:          fh.Fd(),
		path:        path,
		filling:     1,
		maxRetained: maxRetained(maxEvent),
		flusherDone: make(chan struct{}),
	}
	f.work.L = &f.mu
	f.done[0].L = &f.mu
	f.done[1].L = &f.mu
	go f.flusher()
	return f, nil
}

// endLastLine appends '\n' if the file ends in a partial line, left by a
// crash or a failed write, so that the next event starts a line of its own.
func endLastLine(fh *os.File) error {
	st, err := fh.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	var last [1]byte
	if _, err := fh.ReadAt(last[:], st.Size()-1); err != nil && err != io.EOF {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := fh.Write([]byte{'\n'}); err != nil {
		return err
	}
	return fdatasync(fh.Fd())
}

// Forward appends event and a newline to the file and returns once they
// are written and fdatasynced, together with whatever other events arrived
// meanwhile. An event holding a raw newline is refused. Forward does
// not time out: once its line may be in the file, giving up would let the
// caller think a durable event was lost.
func (f *File) Forward(_, _, event []byte, _ time.Time) error {
	if bytes.IndexByte(event, '\n') >= 0 {
		// One bad event must not corrupt the line framing of the others.
		return errNewline
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	if len(f.pending) == 0 {
		f.work.Signal()
	}
	f.pending = append(f.pending, event...)
	f.pending = append(f.pending, '\n')
	f.pendN++
	seq := f.filling
	for f.flushed < seq {
		f.done[seq%2].Wait()
	}
	var err error
	if f.err != nil && seq >= f.errSeq {
		err = f.err
	}
	f.mu.Unlock()
	return err
}

// flusher writes and syncs one batch at a time until Close, then drains
// what is pending and exits.
func (f *File) flusher() {
	defer close(f.flusherDone)
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		for len(f.pending) == 0 && !f.closed {
			f.work.Wait()
		}
		if len(f.pending) == 0 {
			return
		}
		buf, n, seq := f.pending, f.pendN, f.filling
		f.pending, f.pendN = f.spare[:0], 0
		f.filling++
		failed := f.err != nil
		f.mu.Unlock()

		var err error
		if !failed {
			err = f.writeSync(buf)
			if err == nil {
				f.events.Add(n)
				f.bytes.Add(uint64(len(buf)))
			}
		}

		f.mu.Lock()
		f.spare = buf[:0]
		if cap(buf) > f.maxRetained {
			f.spare = nil
		}
		if err != nil && f.err == nil {
			f.err, f.errSeq = err, seq
		}
		f.flushed = seq
		f.done[seq%2].Broadcast()
	}
}

func (f *File) writeSync(buf []byte) error {
	if n, err := f.file.Write(buf); err != nil {
		f.cutBack(n)
		return &kindError{kind: ErrWrite, msg: fmt.Sprintf("cannot write events file %q", f.path), cause: err}
	}
	if err := fdatasync(f.fd); err != nil {
		f.cutBack(len(buf))
		return &kindError{kind: ErrWrite, msg: fmt.Sprintf("cannot fsync events file %q", f.path), cause: err}
	}
	f.fsyncs.Add(1)
	return nil
}

// cutBack removes a failed batch, the last n bytes appended, from the
// file: its events are answered with an error, so none of their lines
// should stay for a reader to act on. The file is the sink's alone, so
// nothing follows them; it is never cut below zero, should someone have
// cut it meanwhile. Best effort: if the truncation fails too, the lines
// stay and the next start ends a partial last one.
func (f *File) cutBack(n int) {
	if n <= 0 {
		return
	}
	st, err := f.file.Stat()
	if err != nil || st.Size() < int64(n) {
		return
	}
	if f.file.Truncate(st.Size()-int64(n)) == nil {
		_ = fdatasync(f.fd)
	}
}

// Close writes and syncs the pending events, stops the flusher and closes
// the file. Later Forwards return ErrClosed. Close is idempotent.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.work.Signal()
	f.mu.Unlock()
	<-f.flusherDone
	if err := f.file.Close(); err != nil {
		return fmt.Errorf("cannot close events file %q: %w", f.path, err)
	}
	return nil
}

// FileStats are the file sink's counters since OpenFile.
type FileStats struct {
	// Events is the number of events written and synced.
	Events uint64
	// Fsyncs is the number of successful fdatasync calls; Events/Fsyncs is
	// the average batch size.
	Fsyncs uint64
	// Bytes is the number of bytes written and synced.
	Bytes uint64
}

// Stats returns the counters. It is cheap enough for every metrics scrape.
func (f *File) Stats() FileStats {
	return FileStats{Events: f.events.Load(), Fsyncs: f.fsyncs.Load(), Bytes: f.bytes.Load()}
}

// Ready reports whether the file sink can take events: nil unless it is
// closed or a write or fsync has failed.
func (f *File) Ready(time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return ErrClosed
	case f.err != nil:
		return f.err
	}
	return nil
}
