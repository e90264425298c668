package downstream

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkFileForward measures the group-committed file sink with
// parallelism×GOMAXPROCS concurrent callers, the way the gateway's request
// handlers call it.
func BenchmarkFileForward(b *testing.B) {
	for _, p := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("callers=%dxGOMAXPROCS", p), func(b *testing.B) {
			f := openFile(b, filepath.Join(b.TempDir(), "events.jsonl"))
			event := []byte(testEvent)
			b.ReportAllocs()
			b.SetBytes(int64(len(event) + 1))
			b.SetParallelism(p)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := f.Forward(nil, nil, event, time.Now()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := f.Stats()
			b.ReportMetric(float64(st.Events)/float64(st.Fsyncs), "events/fsync")
		})
	}
}

// BenchmarkFileWriteFsyncEach is the baseline without group commit: each
// event takes a mutex, writes its line and fdatasyncs on its own.
func BenchmarkFileWriteFsyncEach(b *testing.B) {
	for _, p := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("callers=%dxGOMAXPROCS", p), func(b *testing.B) {
			fh, err := os.OpenFile(filepath.Join(b.TempDir(), "events.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
			if err != nil {
				b.Fatal(err)
			}
			defer fh.Close()
			fd := fh.Fd()
			line := []byte(testEvent + "\n")
			var mu sync.Mutex
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			b.SetParallelism(p)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					_, err := fh.Write(line)
					if err == nil {
						err = fdatasync(fd)
					}
					mu.Unlock()
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(1, "events/fsync")
		})
	}
}

// BenchmarkHTTPForward measures a POST to a fasthttp engine on loopback,
// in this process, that answers 200 at once (client and engine share the
// CPUs): one event at a time against pipelined, 16 in flight per
// connection.
func BenchmarkHTTPForward(b *testing.B) {
	for _, c := range []struct{ callers, pipeline int }{{1, 1}, {16, 1}, {16, 16}} {
		p := c.callers
		b.Run(fmt.Sprintf("callers=%dxGOMAXPROCS/pipeline=%d", p, c.pipeline), func(b *testing.B) {
			e := startEngine(b, "127.0.0.1:0", answer(200))
			e.quiet.Store(true)
			h := openHTTP(b, Config{URL: "http://" + e.addr + "/hooks/in", Pipeline: c.pipeline})
			id, loop, event := []byte("01J0000000000000000000000A"), []byte("new_product"), []byte(testEvent)
			b.ReportAllocs()
			b.SetBytes(int64(len(event)))
			b.SetParallelism(p)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := h.Forward(id, loop, event, time.Now()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(h.Stats().Conns), "conns")
		})
	}
}
