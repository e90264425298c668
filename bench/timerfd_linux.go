package bench

import (
	"context"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// fineTimer waits on a Linux timerfd through Go's network poller. A Go timer
// due in less than a millisecond fires up to a millisecond late once every
// goroutine of the process is waiting — the runtime then blocks in the
// poller with a timeout in whole milliseconds — and the open loop measures
// latency from each request's intended send time, so that slack used to
// land in every percentile it reported (the bare server's p99 at half load
// was 1.40 ms from the intended time and 0.58 ms from the actual send).
// The kernel's timer wakes the poller when it expires, to within tens of
// microseconds.
type fineTimer struct {
	fd   int
	f    *os.File
	spec struct{ interval, value syscall.Timespec }
	buf  [8]byte
}

// newFineTimer returns a timer, or an error where timerfd is unavailable
// (the caller then paces with a Go timer).
func newFineTimer() (*fineTimer, error) {
	const clockMonotonic = 1
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic,
		syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil, errno
	}
	// A non-blocking descriptor makes the File pollable. Its Fd method is
	// never called: that would switch it back to blocking mode.
	return &fineTimer{fd: int(fd), f: os.NewFile(fd, "timerfd")}, nil
}

// watch makes sleep return false once ctx is done; call the result to
// stop watching.
func (t *fineTimer) watch(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = t.f.SetReadDeadline(time.Unix(1, 0)) })
}

// sleep waits d (> 0) and reports whether it did, false when the watched
// context ended first.
func (t *fineTimer) sleep(d time.Duration) bool {
	t.spec.value = syscall.NsecToTimespec(int64(d))
	if _, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, uintptr(t.fd), 0,
		uintptr(unsafe.Pointer(&t.spec)), 0, 0, 0); errno != 0 {
		time.Sleep(d) // cannot happen with a valid timerfd; stay correct anyway
		return true
	}
	_, err := t.f.Read(t.buf[:])
	return err == nil
}

func (t *fineTimer) close() { _ = t.f.Close() }
