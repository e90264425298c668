package cluster_test

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/cluster/redistest"
	"github.com/hookgate/hookgate/idempotency"
)

// TestReleaseFreesOnlyItsOwnClaim: a Release frees the claim its ticket
// names and no other. Another gateway may hold the token by then — the
// first claim's in-flight TTL ran out during a slow hand-over, or the
// Release reached Redis, its answer was lost with the connection, and the
// client sent it again after the token had been claimed anew. Freeing that
// claim would let a third request trigger while the second still can.
func TestReleaseFreesOnlyItsOwnClaim(t *testing.T) {
	srv := redistest.Start(t)
	token := []byte("6f1c1a57-1d9c-4a1e-9b1a-6a2f0e0b7c11")
	tests := []struct {
		name string
		// lose makes the first claim lapse before it is released: it
		// calls release, and claimAgain at the moment another gateway
		// would claim the token.
		lose func(t *testing.T, release func(), claimAgain func())
		// through says the first gateway reaches Redis through a proxy
		// that can cut its connection.
		through bool
	}{
		{"claim expired before release", func(t *testing.T, release, claimAgain func()) {
			time.Sleep(inFlightTTL + 50*time.Millisecond)
			claimAgain()
			release()
		}, false},
		{"release sent again after it ran", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := prefixFor(t)
			var px *cutProxy
			url := srv.URL
			if tc.through {
				px = newCutProxy(t, srv.Addr)
				url = "redis://" + px.addr() + "/0"
			}
			first := open(t, &redistest.Server{URL: url}, prefix, func(cfg *cluster.Config) { cfg.InFlightTTL = inFlightTTL })
			second := open(t, srv, prefix, func(cfg *cluster.Config) { cfg.InFlightTTL = time.Minute })
			claim := func(c *cluster.Client) (idempotency.Ticket, idempotency.Result) {
				return c.Tokens().Claim("tbl", "new_product", token, now())
			}
			tk1, r := claim(first)
			if r != idempotency.Claimed {
				t.Fatalf("first claim: %v", r)
			}
			var tk2 idempotency.Ticket
			claimAgain := func() {
				if tk2, r = claim(second); r != idempotency.Claimed {
					t.Fatalf("second claim, once the first was gone: %v", r)
				}
			}
			release := func() { first.Tokens().Release(tk1) }
			if tc.lose != nil {
				tc.lose(t, release, claimAgain)
			} else {
				// The Release runs in Redis; the proxy drops its answer
				// and cuts the connection, and holds the client's new
				// one until the token has been claimed again.
				px.cutAfter([]byte(hexKey(tk1.Key)))
				done := make(chan struct{})
				go func() { release(); close(done) }()
				select {
				case <-px.cut:
				case <-time.After(5 * time.Second):
					t.Fatal("the release never reached the proxy")
				}
				claimAgain()
				px.open()
				<-done
			}
			// The second claim still holds the token: a third request is
			// told to retry, not let trigger.
			if _, r := claim(second); r != idempotency.InFlight {
				t.Fatalf("claim after the first gateway's release: %v, want in flight (the second claim held)", r)
			}
			// Its own ticket still frees it.
			second.Tokens().Release(tk2)
			if _, r := claim(second); r != idempotency.Claimed {
				t.Fatalf("claim after the second gateway's release: %v, want claimed", r)
			}
		})
	}
}

// inFlightTTL is short so the lapsed-claim case waits little.
const inFlightTTL = 200 * time.Millisecond

// cutProxy forwards TCP connections to a Redis. Armed by cutAfter, it
// forwards the next client write holding a marker, drops the answer, cuts
// that connection and holds new connections until open: to Redis the
// command ran, to the client its connection failed with it unanswered.
type cutProxy struct {
	ln     net.Listener
	target string
	cut    chan struct{} // closed once the marked command's answer was dropped

	mu     sync.Mutex
	marker []byte        // armed while not nil
	gate   chan struct{} // new connections wait until it is closed
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, cut: make(chan struct{}), gate: make(chan struct{})}
	close(p.gate)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cutAfter arms the proxy and closes the gate.
func (p *cutProxy) cutAfter(marker []byte) {
	p.mu.Lock()
	p.marker = marker
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

// open lets the held connections through.
func (p *cutProxy) open() {
	p.mu.Lock()
	close(p.gate)
	p.mu.Unlock()
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		gate := p.gate
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		go p.relay(c, gate)
	}
}

func (p *cutProxy) relay(c net.Conn, gate chan struct{}) {
	<-gate
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, s)
	p.mu.Unlock()
	var marked atomic.Bool
	go func() { // client to Redis
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				p.mu.Lock()
				if p.marker != nil && bytes.Contains(buf[:n], p.marker) {
					p.marker = nil
					marked.Store(true)
				}
				p.mu.Unlock()
				if _, err := s.Write(buf[:n]); err != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		s.Close()
	}()
	buf := make([]byte, 64<<10) // Redis to client
	for {
		n, err := s.Read(buf)
		// The marked command is a script answering an integer; a PING
		// of the client's own may be answered in between.
		if n > 0 && marked.Load() && buf[0] == ':' {
			c.Close()
			s.Close()
			close(p.cut)
			return
		}
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
}

// TestDoneMarkRetried: a done mark Redis could not take — it was down as
// the flow engine answered — is sent again until it lands, so the token
// becomes a duplicate for every gateway rather than claimable again once
// its in-flight TTL runs out.
func TestDoneMarkRetried(t *testing.T) {
	srv := redistest.Start(t)
	if !srv.CanStop() {
		t.Skip("needs a private redis-server")
	}
	rdb := inspect(t, srv)
	const window = time.Hour
	for _, tc := range []struct {
		name string
		keep bool // Redis keeps its data over the restart
	}{
		{"redis restarted with its data", true},
		{"redis restarted empty", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := prefixFor(t)
			first := open(t, srv, prefix, func(cfg *cluster.Config) {
				cfg.Timeout = 150 * time.Millisecond
				cfg.RetryInterval = 20 * time.Millisecond
				cfg.InFlightTTL = inFlightTTL
				cfg.Window = window
			})
			second := open(t, srv, prefix, nil)
			token := []byte("6f1c1a57-1d9c-4a1e-9b1a-6a2f0e0b7c11")
			tk, r := first.Tokens().Claim("tbl", "new_product", token, now())
			if r != idempotency.Claimed {
				t.Fatalf("claim: %v", r)
			}
			srv.Stop(t, tc.keep)
			errs := first.Stats().Errors
			first.Tokens().Done(tk, now()) // the event was delivered
			if !eventually(t, 2*time.Second, func() bool { return first.Stats().Errors > errs }) {
				t.Fatalf("the mark did not fail with redis down: %+v", first.Stats())
			}
			srv.Restart(t)
			time.Sleep(inFlightTTL + 100*time.Millisecond) // past the claim's in-flight TTL
			// The other gateway finds Redis back after its own retry
			// interval; until then it refuses. It must never claim.
			for end := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				_, r := second.Tokens().Claim("tbl", "new_product", token, now())
				if r == idempotency.Duplicate {
					break
				}
				if r == idempotency.Claimed || time.Now().After(end) {
					t.Fatalf("the other gateway's claim of the delivered token: %v, want duplicate", r)
				}
			}
			key := prefix + "ct:{tbl}:" + hexKey(tk.Key)
			if d := pttl(t, rdb, key); d <= window-time.Minute || d > window {
				t.Errorf("the mark's TTL %v, want about the window %v", d, window)
			}
		})
	}
}
