package gateway

import (
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger returns the JSON logger of cfg.Log, writing to stderr through a
// buffer flushed every second, its level (for Options.Level, so that a
// reload can change it), and a function that flushes and stops it.
// Buffering keeps one-line-per-request logging from costing a write
// syscall per request.
func NewLogger(cfg Log) (*zap.Logger, *zap.AtomicLevel, func(), error) {
	l, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, nil, nil, err
	}
	lvl := zap.NewAtomicLevelAt(l)
	ws := &zapcore.BufferedWriteSyncer{
		WS:            zapcore.Lock(os.Stderr),
		Size:          256 << 10,
		FlushInterval: time.Second,
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = millis
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, lvl)
	log := zap.New(core, zap.ErrorOutput(zapcore.Lock(os.Stderr)))
	stop := func() {
		_ = log.Sync()
		_ = ws.Stop()
	}
	return log, &lvl, stop, nil
}

// millis writes a duration as fractional milliseconds (0.042), which keeps
// sub-millisecond latencies visible.
func millis(d time.Duration, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendFloat64(float64(d) / float64(time.Millisecond))
}

// sampler bounds the log lines of one (automation, outcome) pair: the
// first `first` lines of each second are written, then every
// `thereafter`-th (none when thereafter is 0). A flood of refusals thus
// writes a bounded number of lines per second, while the request counters
// still count every request.
//
// The second and the count of lines in it share one word, changed by
// compare-and-swap, so the bound is exact under any concurrency: only the
// first call of a later second starts a new count, and a call that comes
// late with an earlier second counts in the current one instead of
// restarting it.
type sampler struct {
	word atomic.Uint64 // second<<sampleCountBits | lines counted in it
}

const (
	sampleCountBits = 24
	sampleCountMax  = 1<<sampleCountBits - 1
)

// allow reports whether a line at unix second sec may be written.
func (s *sampler) allow(sec int64, first, thereafter int64) bool {
	var n int64
	for {
		old := s.word.Load()
		cur, c := int64(old>>sampleCountBits), int64(old&sampleCountMax)
		next := old
		switch {
		case sec > cur:
			c = 1
			next = uint64(sec)<<sampleCountBits | 1
		case c < sampleCountMax:
			c++
			next = old + 1
		}
		if next == old || s.word.CompareAndSwap(old, next) {
			n = c
			break
		}
	}
	if n <= first {
		return true
	}
	return thereafter > 0 && (n-first)%thereafter == 0
}
