package downstream

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// exchange sends req on a connection of the client's pool and reads the
// engine's answer into resp, all within deadline: the one-at-a-time
// transport (Config.Pipeline 1).
//
// It does what fasthttp's own transport does, with three checks that one
// lacks, each against an answer that is not the event's own. Before a
// request goes out on a connection that has carried one, the socket is
// looked at without reading: bytes the engine sent while the connection
// sat idle (a second answer to one request, a proxy's late error page)
// would be read as this event's answer, and an end of stream means the
// engine has closed it; either way the connection is dropped and the
// next one taken, as many times as the deadline allows. After an answer,
// bytes already read beyond it are ones nobody asked for, and after a
// 101 the engine speaks another protocol: such a connection is closed,
// not pooled. And a write that failed before the kernel took a byte of
// the request is errNotWritten, which Forward sends again.
//
// Over TLS the look also asks the TLS layer for records it took off the
// socket along with the last answer. What the checks cannot see: bytes
// that arrive between the look and the engine's reading of the request,
// and, over TLS, the start of a record the TLS layer read with the last
// answer whose rest had not yet arrived at the look.
//
// On a plain socket where the look works, the request is written from
// inside the wait for the answer (engineConn.sendWait), so the answer
// is read with one system call rather than a failed one and another.
func (h *HTTP) exchange(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return fasthttp.ErrTimeout
		}
		cc, err := h.client.AcquireConn(wait, false)
		if err != nil {
			return err
		}
		// Every connection is dialed by the client's DialTimeout.
		ec := cc.Conn().(*engineConn)
		if ec.used {
			if st := ec.look(); st != sockEmpty {
				h.client.CloseConn(cc)
				if st == sockBytes {
					h.stray.Add(1)
				} else {
					h.idleClosed.Add(1)
				}
				continue
			}
		}
		if err := ec.SetDeadline(deadline); err != nil {
			h.client.CloseConn(cc)
			return err
		}
		ec.written = 0
		bw := h.client.AcquireWriter(ec)
		var waitErr error
		if ec.sendWait != nil {
			ec.out, ec.bw, ec.sendErr = req, bw, nil
			waitErr = ec.raw.Read(ec.sendWait)
			err = ec.sendErr
			ec.out, ec.bw = nil, nil
		} else {
			err = send(req, bw)
		}
		h.client.ReleaseWriter(bw)
		if err != nil {
			h.client.CloseConn(cc)
			if ec.written == 0 && !isTimeout(err) {
				return errNotWritten
			}
			return err
		}
		if waitErr != nil {
			// The deadline passed, or the connection broke, with no answer.
			h.client.CloseConn(cc)
			return waitErr
		}
		br := h.client.AcquireReader(ec)
		err = resp.ReadLimitBody(br, h.client.MaxResponseBodySize)
		extra := br.Buffered()
		h.client.ReleaseReader(br)
		switch {
		case err != nil:
			h.client.CloseConn(cc)
			if err == io.EOF {
				return fasthttp.ErrConnectionClosed
			}
			return err
		case extra > 0:
			h.client.CloseConn(cc)
			h.stray.Add(1)
		case resp.StatusCode() < 200 || resp.ConnectionClose():
			// A 101, after which nothing on the connection is HTTP; or
			// the engine ends the connection with this answer.
			h.client.CloseConn(cc)
		default:
			ec.used = true
			h.client.ReleaseConn(cc)
		}
		return nil
	}
}

// send writes req through bw and flushes it.
func send(req *fasthttp.Request, bw *bufio.Writer) error {
	if err := req.Write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// sockState is what a look at an idle connection's socket found.
type sockState uint8

const (
	sockEmpty  sockState = iota // nothing to read: the connection may carry a request
	sockBytes                   // bytes nobody asked for
	sockClosed                  // an end of stream or an error: the engine closed it
)

// engineConn is a connection of the one-at-a-time transport, with what it
// takes to look at its socket without reading it.
type engineConn struct {
	net.Conn
	raw     syscall.RawConn // the socket, under TLS if any; nil if unknown
	peek    func(fd uintptr) bool
	seen    sockState  // what peek saw
	tls     *tls.Conn  // nil for http
	sock    *tlsSocket // what tls reads the socket through
	one     [1]byte
	used    bool // an answer was read on it
	written int  // bytes of the current request the kernel has taken

	// sendWait, when not nil, is the function exchange reads the raw
	// socket with: its first call writes out through bw (the error in
	// sendErr) and asks to wait for the socket to be readable, the next
	// one ends the wait. The read then takes the answer with one system
	// call. Written first and read after, the read would nearly always
	// fail once with EAGAIN, the engine not having answered yet, before
	// waiting: Go's poller tries the system call before it waits, and it
	// must, because arming the wait forgets a readiness already seen. A
	// read of the raw socket arms it first, so the write must come after,
	// inside it; and nothing is lost, since the socket holds nothing when
	// it is armed: the look found it empty, or it is new, and the engine
	// answers only what it is sent. (Bytes sent while idle that arrive
	// after the look are read with the answer and close the connection,
	// as before; if they came alone, the wait ends at the deadline.)
	// Only for a plain socket (TLS reads records, not the socket), where
	// peekSocket works.
	sendWait func(fd uintptr) bool
	out      *fasthttp.Request
	bw       *bufio.Writer
	sendErr  error
}

// newEngineConn wraps c, made once per connection so that looking at the
// socket allocates nothing per event. For https, c is the TLS layer and
// sock what it reads the socket through.
func newEngineConn(c net.Conn, sock *tlsSocket) *engineConn {
	ec := &engineConn{Conn: c}
	under := c
	if tc, ok := c.(*tls.Conn); ok && sock != nil {
		ec.tls, ec.sock = tc, sock
		under = sock.Conn
	}
	if sc, ok := under.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			ec.raw = raw
			ec.peek = func(fd uintptr) bool {
				ec.seen = peekSocket(fd)
				return true // never wait for readiness
			}
			if canPeek && ec.tls == nil {
				ec.sendWait = func(uintptr) bool {
					if ec.out == nil {
						return true // readable: the answer, or an end
					}
					ec.sendErr = send(ec.out, ec.bw)
					ec.out = nil
					return ec.sendErr != nil
				}
			}
		}
	}
	return ec
}

func (ec *engineConn) Write(p []byte) (int, error) {
	n, err := ec.Conn.Write(p)
	ec.written += n
	return n, err
}

// look tells what the engine has sent on the idle connection since the
// last answer: sockEmpty if nothing, and it has not closed it.
func (ec *engineConn) look() sockState {
	st := sockEmpty
	if ec.raw != nil {
		ec.seen = sockEmpty
		if err := ec.raw.Read(ec.peek); err != nil {
			return sockClosed
		}
		st = ec.seen
	}
	if ec.tls == nil || st == sockClosed {
		return st
	}
	if st == sockBytes {
		// Over TLS, bytes on an idle connection may be the engine's
		// close_notify, its way of closing it, which is no stray
		// answer: a read tells, with a deadline only long enough for
		// the rest of a record on its way (a deadline already past
		// would not read at all). The connection is dropped either way.
		_ = ec.tls.SetReadDeadline(time.Now().Add(time.Millisecond))
		n, err := ec.tls.Read(ec.one[:])
		if n == 0 && err != nil && !isTimeout(err) {
			return sockClosed
		}
		return sockBytes
	}
	// Records the TLS layer took off the socket along with the last
	// answer are not there to peek at. A read of the TLS layer that
	// cannot reach the socket finds them, and only them: the socket was
	// looked at first, so what is on it now arrived after the look. It
	// is needed only if the last read of the socket brought bytes beyond
	// the record it was made for (it allocates, inside crypto/tls).
	if ec.sock.beyond == 0 {
		return sockEmpty
	}
	ec.sock.probing = true
	n, err := ec.tls.Read(ec.one[:])
	ec.sock.probing = false
	switch {
	case n > 0:
		return sockBytes
	case err != errProbe:
		return sockClosed // a close_notify or another alert
	}
	return sockEmpty
}

// tlsSocket is the socket under an https connection of the one-at-a-time
// transport: while probing, a read fails at once with errProbe, which the
// TLS layer takes as a passing timeout, so it keeps its state and reads
// only what it has already buffered.
//
// It also follows the records' framing (a 5-byte header whose last two
// bytes give the length of what follows) to tell whether the TLS layer can
// have buffered anything. crypto/tls reads the socket only when the
// record it is to read next is incomplete, so at each read every record
// before that one has been taken; bytes the read brings beyond that
// record's end (beyond) are the only ones the TLS layer may hold unread
// once it has taken it.
type tlsSocket struct {
	net.Conn
	probing bool
	hdr     [5]byte
	hn      int // bytes of hdr received
	left    int // bytes of the current record's body still to come
	beyond  int // bytes the last read brought past the record it was made for
}

func (s *tlsSocket) Read(p []byte) (int, error) {
	if s.probing {
		return 0, errProbe
	}
	n, err := s.Conn.Read(p)
	s.frame(p[:n])
	return n, err
}

// frame follows the record framing over b, the bytes of one read.
func (s *tlsSocket) frame(b []byte) {
	s.beyond = 0
	head := true // still in the record the read was made for
	for len(b) > 0 {
		if s.hn < len(s.hdr) {
			k := copy(s.hdr[s.hn:], b)
			s.hn += k
			b = b[k:]
			if s.hn < len(s.hdr) {
				return
			}
			s.left = int(s.hdr[3])<<8 | int(s.hdr[4])
		}
		k := min(s.left, len(b))
		s.left -= k
		b = b[k:]
		if s.left == 0 {
			s.hn = 0 // the record is complete
			if head {
				s.beyond = len(b)
				head = false
			}
		}
	}
}

// errProbe is tlsSocket's read error while probing: a net.Error that is a
// timeout and temporary, which crypto/tls does not keep as the
// connection's error.
var errProbe error = probeError{}

type probeError struct{}

func (probeError) Error() string   { return "probe: nothing buffered" }
func (probeError) Timeout() bool   { return true }
func (probeError) Temporary() bool { return true }
