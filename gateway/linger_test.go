package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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

// TestLingerChunked: a chunked body refused before it is read is drained
// as well. A small one keeps the connection, as fasthttp's own drain did;
// past what fasthttp drains itself (which closed the connection with the
// rest unread, so the caller saw a reset instead of its answer) it is
// answered, drained and the connection closed.
func TestLingerChunked(t *testing.T) {
	g, cfg, _ := fileGateway(t, proxyConfig)
	addr := serveLoopback(t, g, cfg)
	for _, tc := range []struct {
		name string
		size int
		keep bool // the connection serves the next request
	}{
		{"4 KiB", 4 << 10, true},
		{"fasthttp's drain limit", fasthttpDrainLimit, true},
		{"past fasthttp's drain limit", fasthttpDrainLimit + 64<<10, false},
		{"1 MiB", 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialLoopback(t, addr)
			var req bytes.Buffer
			req.WriteString("POST /webhook/flow/no-such-token-0123456789abc HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n")
			chunk := bytes.Repeat([]byte{'x'}, 16<<10)
			for left := tc.size; left > 0; left -= len(chunk) {
				c := chunk[:min(left, len(chunk))]
				fmt.Fprintf(&req, "%x\r\n%s\r\n", len(c), c)
			}
			req.WriteString("0\r\n\r\n")
			// The whole body is sent before the answer is read, as many
			// HTTP clients do.
			if _, err := conn.Write(req.Bytes()); err != nil {
				t.Fatalf("sending the body: %v", err)
			}
			br := bufio.NewReader(conn)
			status, code, hdr := readAnswer(t, br)
			if status != 404 || code != 800004404 {
				t.Fatalf("answered %d %d; want 404 800004404", status, code)
			}
			if closes := bytes.Contains([]byte(hdr), []byte("Connection: close")); closes == tc.keep {
				t.Fatalf("answer %q: Connection: close %v, want %v", hdr, closes, !tc.keep)
			}
			if !tc.keep { // closed after the drain, not reset
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("after the answer: %v; want EOF", err)
				}
				return
			}
			fmt.Fprintf(conn, "POST /webhook/flow/nope HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n")
			if status, _, _ := readAnswer(t, br); status != 404 {
				t.Fatalf("next request on the connection answered %d; want 404", status)
			}
		})
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
