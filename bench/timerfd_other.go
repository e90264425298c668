//go:build !linux

package bench

import (
	"context"
	"errors"
	"time"
)

// fineTimer is Linux-only (timerfd); elsewhere the open loop paces with a
// Go timer.
type fineTimer struct{}

func newFineTimer() (*fineTimer, error) { return nil, errors.New("no timerfd on this system") }

func (*fineTimer) watch(context.Context) func() bool { return func() bool { return true } }
func (*fineTimer) sleep(time.Duration) bool          { return false }
func (*fineTimer) close()                            {}
