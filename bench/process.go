package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// child is a subprocess of the suite: the gateway, the sink or the bare
// server. Its stderr (and, for the gateway, stdout) go to logPath.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	// exited is closed when the process has exited; err is then its
	// exit status.
	exited chan struct{}
	err    error
}

func startChild(name string, argv, env []string, logPath string, captureStdout bool) (*child, *bufio.Reader, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = f
	var out *bufio.Reader
	if captureStdout {
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		out = bufio.NewReader(pipe)
	} else {
		cmd.Stdout = f
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, log: f, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.exited)
	}()
	return c, out, nil
}

// startServer starts this program in sink or bare mode and returns it with
// the address it listens on.
func startServer(self, env []string, s Server, logPath string, flags ...string) (*child, string, error) {
	argv := append(append(append([]string(nil), self...), s.String(), "-listen", "127.0.0.1:0"), flags...)
	c, out, err := startChild(s.String(), argv, env, logPath, true)
	if err != nil {
		return nil, "", err
	}
	type line struct {
		s   string
		err error
	}
	lc := make(chan line, 1)
	go func() {
		l, err := out.ReadString('\n')
		lc <- line{l, err}
	}()
	select {
	case l := <-lc:
		addr, ok := strings.CutPrefix(strings.TrimSpace(l.s), "listening ")
		if l.err != nil || !ok {
			c.stop(5 * time.Second)
			return nil, "", fmt.Errorf("%s server did not start (%v): %s", s, l.err, c.tail())
		}
		return c, addr, nil
	case <-time.After(15 * time.Second):
		c.stop(5 * time.Second)
		return nil, "", fmt.Errorf("%s server did not say where it listens within 15s: %s", s, c.tail())
	}
}

// stop sends SIGTERM, waits up to timeout, then kills.
func (c *child) stop(timeout time.Duration) error {
	select {
	case <-c.exited:
		return c.exitErr()
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return c.exitErr()
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", c.name, timeout)
	}
}

func (c *child) exitErr() error {
	if c.err != nil {
		return fmt.Errorf("%s exited: %w; %s", c.name, c.err, c.tail())
	}
	return nil
}

// tail returns the last lines of the child's log, for error messages.
func (c *child) tail() string {
	b, _ := os.ReadFile(c.logPath)
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return "log " + c.logPath + ":\n" + string(b)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago (the gateway's listeners are named in its configuration).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady waits until the gateway accepts connections on listen and its
// admin /readyz answers 200, or the process exits, or timeout passes.
func (c *child) waitReady(ctx context.Context, listen, admin string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	url := "http://" + admin + "/readyz"
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited while starting: %v; %s", c.name, c.err, c.tail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if conn, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			conn.Close()
			if status, _, err := fasthttp.GetTimeout(nil, url, time.Second); err == nil && status == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s; %s", c.name, timeout, c.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape fetches url and returns the value of each named Prometheus
// counter without labels; missing counters are absent from the map.
func scrape(url string, names ...string) (map[string]float64, error) {
	status, body, err := fasthttp.GetTimeout(nil, url, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if status != 200 {
		return nil, fmt.Errorf("GET %s: status %d", url, status)
	}
	out := map[string]float64{}
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		for _, n := range names {
			rest, ok := bytes.CutPrefix(line, []byte(n+" "))
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
			if err == nil {
				out[n] = v
			}
		}
	}
	return out, nil
}

// sinkEvents asks the sink how many events it has taken.
func sinkEvents(addr string) (uint64, error) {
	status, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/stats", 5*time.Second)
	if err != nil {
		return 0, err
	}
	if status != 200 {
		return 0, fmt.Errorf("sink /stats: status %d", status)
	}
	code, ok := jsonUint(body, `"events":`)
	if !ok {
		return 0, errors.New("sink /stats: no events count")
	}
	return code, nil
}

func jsonUint(body []byte, key string) (uint64, bool) {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0, false
	}
	b := body[i+len(key):]
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	v, err := strconv.ParseUint(string(b[:n]), 10, 64)
	return v, err == nil
}

// startRedis starts a private redis-server from PATH on a free loopback
// port, without persistence, for the cluster scenarios, and waits until
// it accepts connections.
func startRedis(dir string) (*child, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("cluster scenarios need redis-server on PATH (Debian: apt-get install redis-server)")
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	c, _, err := startChild("redis-server", []string{bin, "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir}, nil, filepath.Join(dir, "redis.log"), false)
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return c, "redis://" + addr + "/0", nil
		}
		if time.Now().After(deadline) {
			c.stop(5 * time.Second)
			return nil, "", fmt.Errorf("redis-server did not listen on %s; %s", addr, c.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
