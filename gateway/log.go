package gateway

import (
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger returns the JSON logger of cfg.Log, writing to stderr through a
// buffer flushed every second, and a function that flushes and stops it.
// Buffering keeps one-line-per-request logging from costing a write
// syscall per request.
func NewLogger(cfg Log) (*zap.Logger, func(), error) {
	lvl, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, nil, err
	}
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
	return log, stop, nil
}

// millis writes a duration as fractional milliseconds (0.042), which keeps
// sub-millisecond latencies visible.
func millis(d time.Duration, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendFloat64(float64(d) / float64(time.Millisecond))
}
