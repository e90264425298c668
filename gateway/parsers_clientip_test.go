package gateway

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestClientAddrHostile: what a caller can write in front of a trusted
// proxy's X-Forwarded-For never chooses the address, and spellings that
// name no address (zones, "unknown", a half-written port or bracket) stop
// the walk at the last trusted hop rather than being guessed at.
func TestClientAddrHostile(t *testing.T) {
	trusted := prefixes{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	f := func(xff, realIP, want string) {
		t.Helper()
		if got := clientAddr(netip.MustParseAddr("10.0.0.1"), trusted, lines(xff), []byte(realIP)); got.String() != want {
			t.Errorf("X-Forwarded-For %q, X-Real-IP %q: %s, want %s", xff, realIP, got, want)
		}
	}
	// Forged entries, trusted-looking or not, before the proxy's own.
	f("10.9.9.9, 198.51.100.7", "", "198.51.100.7")
	f("1.1.1.1\n10.9.9.9\n198.51.100.7", "", "198.51.100.7")
	f("1.1.1.1, 10.9.9.9\n198.51.100.7, 10.0.0.2", "", "198.51.100.7")
	f("198.51.100.7", "1.1.1.1", "198.51.100.7") // X-Real-IP only without X-Forwarded-For
	// A mapped address is the IPv4 one, trusted or not.
	f("::ffff:198.51.100.7", "", "198.51.100.7")
	f("198.51.100.7, ::ffff:10.0.0.9", "", "198.51.100.7")
	f("", "::ffff:198.51.100.7", "198.51.100.7")
	// Ports and brackets, as some proxies write them, are read past; a
	// forged one in front of the proxy's entry chooses nothing.
	f("198.51.100.7:443", "", "198.51.100.7")
	f("[2001:db8::7]", "", "2001:db8::7")
	f("[2001:db8::7]:443, 10.0.0.2", "", "2001:db8::7")
	f("", "[2001:db8::7]", "2001:db8::7")
	f("10.9.9.9:1, 198.51.100.7:2", "", "198.51.100.7")
	// Zones, "unknown", and brackets or ports half written stop the walk.
	f("2001:db8::7%eth0", "", "10.0.0.1")
	f("unknown, 10.0.0.2", "", "10.0.0.2")
	f("[2001:db8::7, 10.0.0.2", "", "10.0.0.2")
	f("198.51.100.7:, 10.0.0.2", "", "10.0.0.2")
	f("[198.51.100.7]:x", "", "10.0.0.1")
	// Empty entries, empty lines and space are skipped.
	f(" , 198.51.100.7 ,\t,", "", "198.51.100.7")
	f("198.51.100.7\n \n,", "", "198.51.100.7")
	f("2001:DB8::7", "", "2001:db8::7")
}

// TestClientAddrLarge: a thousand lines, or a line of a megabyte, are
// read in time linear in their size.
func TestClientAddrLarge(t *testing.T) {
	trusted := prefixes{netip.MustParsePrefix("10.0.0.0/8")}
	peer := netip.MustParseAddr("10.0.0.1")
	many := make([][]byte, 1000)
	for i := range many {
		many[i] = []byte("10.1.1.1, 10.2.2.2")
	}
	many[0] = []byte("198.51.100.7, 10.3.3.3")
	huge := [][]byte{append(bytes.Repeat([]byte("10.4.4.4 ,"), 100_000), " ,"...)}
	start := time.Now()
	if got := clientAddr(peer, trusted, many, nil); got.String() != "198.51.100.7" {
		t.Errorf("a thousand lines: %s", got)
	}
	if got := clientAddr(peer, trusted, huge, nil); got.String() != "10.4.4.4" {
		t.Errorf("a line of a megabyte: %s", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestLoopsMarker: ids are compared exactly (automation ids are case
// sensitive), trimmed of space, empty entries do not count, repeated ids
// do, and the eighth id refuses.
func TestLoopsMarker(t *testing.T) {
	f := func(marker string, want bool, forward string) {
		t.Helper()
		if got := loops([]byte(marker), []byte("me")); got != want {
			t.Errorf("loops(%q) = %v, want %v", marker, got, want)
		}
		if got := string(appendLoopHeader(nil, []byte(marker), []byte("me"))); !want && got != forward {
			t.Errorf("appendLoopHeader(%q) = %q, want %q", marker, got, forward)
		}
	}
	f("Me,ME,mE", false, "Me,ME,mE,me")
	f("m e, me x", false, "m e,me x,me")
	f("\tme\t", true, "")
	f(" , ,,", false, "me")
	f("a,a,a,a,a,a,a", false, "a,a,a,a,a,a,a,me")
	f("a,a,a,a,a,a,a,a", true, "")
	f(strings.Repeat(",", 1000)+"1,2,3,4,5,6,7"+strings.Repeat(" ,", 1000), false, "1,2,3,4,5,6,7,me")
	f("1,2,3,4,5,6,7,8,9,me", true, "")
}
