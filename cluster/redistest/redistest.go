// Package redistest gives tests a real Redis server: the one REDIS_URL
// names, or a private redis-server started from PATH on a free loopback
// port in a temporary directory and stopped when the test ends. Without
// either the test is skipped, except under CI=true, where it fails: CI
// must not pass by testing nothing.
//
// A private server can be stopped and started again on the same port, or
// paused, so tests can see what an outage does.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one Redis server for a test.
type Server struct {
	// URL is redis://host:port/db, for cluster.Config.URL.
	URL string
	// Addr is host:port.
	Addr string

	external bool   // from REDIS_URL: not ours to stop
	bin      string // redis-server
	dir      string // working directory: config, log, dump
	port     int

	mu     sync.Mutex  // guards proc, exited and paused
	proc   *os.Process // nil while stopped
	exited chan error  // receives the exit once proc is gone
	paused bool
}

// Start returns a server for tb; see the package comment. The private
// server is stopped by tb.Cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		pu, err := url.Parse(u)
		if err != nil {
			tb.Fatalf("REDIS_URL cannot be parsed")
		}
		return &Server{URL: u, Addr: pu.Host, external: true}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "no Redis to test against: set REDIS_URL or put redis-server on PATH (Debian: apt-get install redis-server)"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + "; under CI=true this is a failure")
		}
		tb.Skip(msg)
	}
	s := &Server{bin: bin, dir: tb.TempDir()}
	// A free port can be taken by someone else between the probe and
	// redis-server's bind, so try a few.
	var lastErr error
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			tb.Fatalf("cannot find a free loopback port: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.URL = "redis://" + s.Addr + "/0"
		if lastErr = s.start(); lastErr == nil {
			tb.Cleanup(s.Close)
			return s
		}
	}
	tb.Fatalf("cannot start redis-server: %v", lastErr)
	return nil
}

// CanStop says whether Stop, Restart, Pause and Resume work: they do on a
// private server, not on one from REDIS_URL. Outage tests skip without.
func (s *Server) CanStop() bool { return !s.external }

// Stop shuts the server down and waits until it is gone. With keep, it
// saves its data first and Restart loads it, like a Redis with
// persistence; without, the data is lost, like a crash of one without.
func (s *Server) Stop(tb testing.TB, keep bool) {
	tb.Helper()
	s.mustOwn(tb)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	if s.paused {
		_ = thaw(s.proc)
		s.paused = false
	}
	if keep {
		if err := s.do("SHUTDOWN", "SAVE"); err != nil {
			_ = s.proc.Kill()
		}
	} else {
		_ = s.proc.Kill()
	}
	<-s.exited
	s.proc = nil
}

// Restart starts a stopped server again on the same port and waits until
// it answers PING.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mustOwn(tb)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	var err error
	// The port was ours a moment ago; allow for a slow release of it.
	for range 10 {
		if err = s.startLocked(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("cannot restart redis-server on %s: %v", s.Addr, err)
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// is answered, as with a hung server or a lost network.
func (s *Server) Pause(tb testing.TB) {
	tb.Helper()
	s.mustOwn(tb)
	if !canFreeze {
		tb.Skip("redis-server cannot be paused here: no SIGSTOP")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.paused {
		if err := freeze(s.proc); err != nil {
			tb.Fatalf("cannot pause redis-server: %v", err)
		}
		s.paused = true
	}
}

// Resume undoes Pause.
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	s.mustOwn(tb)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && s.paused {
		if err := thaw(s.proc); err != nil {
			tb.Fatalf("cannot resume redis-server: %v", err)
		}
		s.paused = false
	}
}

// Close stops a private server for good; Start registers it as cleanup.
func (s *Server) Close() {
	if s.external {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	if s.paused {
		_ = thaw(s.proc)
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc = nil
}

func (s *Server) mustOwn(tb testing.TB) {
	tb.Helper()
	if s.external {
		tb.Skip("the Redis from REDIS_URL cannot be stopped by a test")
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

// startLocked runs redis-server and waits for PING; s.mu is held.
func (s *Server) startLocked() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", "redis.log",
		"--daemonize", "no",
	)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited (%v): %s", err, s.logTail())
		default:
		}
		if s.do("PING") == nil {
			s.proc, s.exited = cmd.Process, exited
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer PING within 10s: %s", s.Addr, s.logTail())
}

// do sends one inline command and reads one reply line; an error reply
// is an error.
func (s *Server) do(args ...string) error {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(strings.Join(args, " ") + "\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if strings.HasPrefix(line, "-") {
		return fmt.Errorf("%s", strings.TrimSpace(line[1:]))
	}
	if args[0] == "SHUTDOWN" && err != nil {
		return nil // a shut-down server closes the connection instead
	}
	return err
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
