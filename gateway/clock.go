package gateway

import "time"

// The in-process rate limits, Client-Tokens and the engine's circuit
// breaker measure time on the monotonic clock. A step of the wall clock
// (NTP correcting it, a virtual machine resumed) must not refuse every
// request for the length of a backward step, hold the breaker open as
// long, or expire remembered Client-Tokens early on a forward step, so a
// retry triggers twice. Only the signature check compares with the wall
// clock, as the sender's timestamp does, and event ids and log lines
// carry it.

var (
	// epoch is the origin of the timeline: its wall reading in Unix
	// nanoseconds, from which it advances with the monotonic clock.
	epoch     = time.Now()
	epochUnix = epoch.UnixNano()
)

// monoNanos places t, read from time.Now, on a timeline in Unix
// nanoseconds that advances with the monotonic clock: the wall clock at
// start plus the monotonic time since. A t without a monotonic reading
// falls back to its wall clock.
func monoNanos(t time.Time) int64 { return epochUnix + int64(t.Sub(epoch)) }
