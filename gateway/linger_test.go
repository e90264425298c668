package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestLingerAnswersBeforeDraining: a request refused before its body,
// declaring more than fasthttp drains itself, is answered and its body
// drained, so a caller that sends its whole body before reading reads
// the refusal, not a reset; then the connection closes and the slot is
// given back.
func TestLingerAnswersBeforeDraining(t *testing.T) {
	g, cfg, _ := fileGateway(t, proxyConfig)
	conn := dialLoopback(t, serveLoopback(t, g, cfg))
	const size = fasthttpDrainLimit + 64<<10
	fmt.Fprintf(conn, "POST /webhook/flow/no-such-token-0123456789abc HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n", size)
	if _, err := conn.Write(bytes.Repeat([]byte{'x'}, size)); err != nil {
		t.Fatalf("sending the body: %v", err)
	}
	status, code, hdr := readAnswer(t, bufio.NewReader(conn))
	if status != 404 || code != 800004404 {
		t.Fatalf("answered %d %d; want 404 800004404", status, code)
	}
	if !bytes.Contains([]byte(hdr), []byte("Connection: close")) {
		t.Errorf("answer %q does not say the connection closes", hdr)
	}
	waitSlots(t, g)
}

// TestLingerSlotsComeBack: fasthttp skips the hijack handler when the
// connection fails before it (writing the answers held back for earlier
// pipelined requests); a drain slot taken before it was never given back,
// and once maxLingering were lost no refused body was drained again.
func TestLingerSlotsComeBack(t *testing.T) {
	// read_timeout is also how long a lingering drain may take.
	g, cfg, _ := fileGateway(t, "server: {read_timeout: 200ms}\n"+proxyConfig)
	addr := serveLoopback(t, g, cfg)
	for range 20 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// A small request whose answer fasthttp holds back because the
		// next request is already buffered, then a refused one (unknown
		// token) declaring more than fasthttp drains itself.
		fmt.Fprintf(conn, "POST /webhook/flow/nope-a HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n"+
			"POST /webhook/flow/nope-b HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n", fasthttpDrainLimit+44<<10)
		time.Sleep(20 * time.Millisecond) // the server waits for the first body byte
		conn.Write([]byte("x"))
		conn.(*net.TCPConn).SetLinger(0) // and the caller resets the connection
		conn.Close()
	}
	waitSlots(t, g)
}

// waitSlots waits for every drain to end, failing if a slot stays taken
// well past the time a drain may take.
func waitSlots(t *testing.T, g *Gateway) {
	t.Helper()
	deadline := time.Now().Add(5*g.lingerFor + 2*time.Second)
	for len(g.lingerSlots) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d drain slots still taken after every connection ended", len(g.lingerSlots))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
