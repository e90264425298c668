package bench

import (
	"context"
	"testing"
	"time"
)

// TestPacerReleases: every connection's requests are released in order,
// none before it is due, all of those due before the end and none after.
func TestPacerReleases(t *testing.T) {
	sched := Schedule{Rate: 4000, Conns: 4}
	const end = 100 * time.Millisecond
	p := newPacer(sched)
	t0 := time.Now()
	go p.run(context.Background(), t0, end)
	done := make(chan struct{})
	type got struct {
		conn, n int
		early   time.Duration // how long before its due time a release came
	}
	res := make(chan got, sched.Conns)
	for c := range sched.Conns {
		go func() {
			g := got{conn: c}
			for k := 0; sched.Offset(c, k) < end; k++ {
				if !p.wait(done, c, k) {
					break
				}
				if e := sched.Offset(c, k) - time.Since(t0); e > g.early {
					g.early = e
				}
				g.n++
			}
			res <- g
		}()
	}
	timeout := time.After(5 * time.Second)
	for range sched.Conns {
		select {
		case g := <-res:
			if want := sched.Due(g.conn, end); g.n != want {
				t.Errorf("conn %d: %d requests released, want %d", g.conn, g.n, want)
			}
			if g.early > 0 {
				t.Errorf("conn %d: a request released %s before it was due", g.conn, g.early)
			}
		case <-timeout:
			t.Fatal("the pacer did not release every request due")
		}
	}
	// Past the end nothing more is released.
	for c := range sched.Conns {
		if r := p.released[c].Load(); r != int64(sched.Due(c, end)) {
			t.Errorf("conn %d: %d released, want %d", c, r, sched.Due(c, end))
		}
	}
}

// TestPacerStops: a run that ends early releases nothing more, and a
// waiting worker returns.
func TestPacerStops(t *testing.T) {
	sched := Schedule{Rate: 10, Conns: 1} // one request per 100ms
	p := newPacer(sched)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { p.run(ctx, time.Now(), time.Minute); close(stopped) }()
	if !p.wait(ctx.Done(), 0, 0) {
		t.Fatal("request 0, due at the start, was not released")
	}
	waited := make(chan bool)
	go func() { waited <- p.wait(ctx.Done(), 0, 5) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case ok := <-waited:
		if ok {
			t.Fatal("request 5 released after the run ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting worker did not return when the run ended")
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the pacer did not stop when the run ended")
	}
}
