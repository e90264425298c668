package gateway

import (
	"bytes"
	"net"
	"net/netip"
)

// prefixes is a list of CIDRs; an empty list contains nothing.
type prefixes []netip.Prefix

func (ps prefixes) contains(a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr converts the TCP peer's address without allocating.
func peerAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// clientAddr returns the caller's address: the TCP peer, unless the peer is
// a trusted proxy, in which case X-Forwarded-For is read from the right and
// the first address that is not a trusted proxy is the client (the ones to
// its left could be forged by the client). xff holds the header's lines in
// the order they came: a proxy that adds a line of its own instead of
// extending the last one (HAProxy's option forwardfor) puts the client it
// saw in the last line, and the lines form one list (RFC 9110 §5.3), so
// they are read from the last one back. Without X-Forwarded-For, X-Real-IP
// is used. An unparsable entry stops the walk at the last trusted hop, so
// a forged value can't choose the address.
func clientAddr(peer netip.Addr, trusted prefixes, xff [][]byte, realIP []byte) netip.Addr {
	if !peer.IsValid() || len(trusted) == 0 || !trusted.contains(peer) {
		return peer
	}
	if len(xff) > 0 {
		hop := peer
		for l := len(xff) - 1; l >= 0; l-- {
			line := xff[l]
			for len(line) > 0 {
				var part []byte
				if i := bytes.LastIndexByte(line, ','); i >= 0 {
					part, line = line[i+1:], line[:i]
				} else {
					part, line = line, nil
				}
				part = bytes.TrimSpace(part)
				if len(part) == 0 {
					continue
				}
				a, ok := headerAddr(part)
				if !ok {
					return hop
				}
				if !trusted.contains(a) {
					return a
				}
				hop = a
			}
		}
		return hop
	}
	if len(realIP) > 0 {
		if a, ok := headerAddr(bytes.TrimSpace(realIP)); ok {
			return a
		}
	}
	return peer
}

var colon = []byte{':'}

// headerAddr parses an address a header names: a bare address, or one
// with a port as some proxies write it ("203.0.113.7:51234",
// "[2001:db8::7]:443", Azure Application Gateway among them), or an IPv6
// address in brackets; the port means nothing here and is dropped. An
// IPv6 zone ("fe80::1%eth0") is refused: it names an interface of the
// sender's machine, means nothing here, and may hold any byte but the ones
// that end it, which the event's source_ip must never carry. So every
// address returned prints as digits, hex letters, '.' and ':' only.
func headerAddr(b []byte) (netip.Addr, bool) {
	// The form is told by its first and last bytes and its colons, so that
	// each spelling takes one parse: a failed one allocates its error. An
	// entry with a byte no address or port is spelt with ("unknown", a
	// zone's '%') is refused without one.
	for _, c := range b {
		if !addrByte[c] {
			return netip.Addr{}, false
		}
	}
	var a netip.Addr
	var err error
	switch n := len(b); {
	case n > 2 && b[0] == '[' && b[n-1] == ']':
		a, err = netip.ParseAddr(b2s(b[1 : n-1]))
	case n > 0 && b[0] == '[' || bytes.Count(b, colon) == 1: // [v6]:port, v4:port
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(b2s(b))
		a = ap.Addr()
	default:
		a, err = netip.ParseAddr(b2s(b))
	}
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// addrByte holds the bytes an address in a header is spelt with: digits,
// hex letters, '.', ':' and brackets.
var addrByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdefABCDEF.:[]") {
		t[c] = true
	}
	return t
}()
