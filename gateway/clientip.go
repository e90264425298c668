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
// its left could be forged by the client). Without X-Forwarded-For,
// X-Real-IP is used. An unparsable entry stops the walk at the last
// trusted hop, so a forged value can't choose the address.
func clientAddr(peer netip.Addr, trusted prefixes, xff, realIP []byte) netip.Addr {
	if !peer.IsValid() || len(trusted) == 0 || !trusted.contains(peer) {
		return peer
	}
	if len(xff) > 0 {
		hop := peer
		for len(xff) > 0 {
			var part []byte
			if i := bytes.LastIndexByte(xff, ','); i >= 0 {
				part, xff = xff[i+1:], xff[:i]
			} else {
				part, xff = xff, nil
			}
			part = bytes.TrimSpace(part)
			if len(part) == 0 {
				continue
			}
			a, err := netip.ParseAddr(b2s(part))
			if err != nil {
				return hop
			}
			a = a.Unmap()
			if !trusted.contains(a) {
				return a
			}
			hop = a
		}
		return hop
	}
	if len(realIP) > 0 {
		if a, err := netip.ParseAddr(b2s(bytes.TrimSpace(realIP))); err == nil {
			return a.Unmap()
		}
	}
	return peer
}
