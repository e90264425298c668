package gateway

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// lines splits a test's header value at '\n' into the lines a request
// would carry; "" is no line.
func lines(s string) [][]byte {
	if s == "" {
		return nil
	}
	return bytes.Split([]byte(s), []byte("\n"))
}

func TestClientAddr(t *testing.T) {
	trusted := prefixes{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name, peer, xff, realIP, want string
		trusted                       prefixes
	}{
		{"untrusted peer ignores headers", "203.0.113.1", "198.51.100.1", "198.51.100.2", "203.0.113.1", trusted},
		{"no trusted proxies", "10.0.0.1", "198.51.100.1", "", "10.0.0.1", nil},
		{"trusted peer, xff", "10.0.0.1", "198.51.100.1", "", "198.51.100.1", trusted},
		{"right-most untrusted wins", "10.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.2", "", "198.51.100.1", trusted},
		{"all trusted: left-most", "10.0.0.1", "10.0.0.3, 10.0.0.2", "", "10.0.0.3", trusted},
		{"garbage stops at last trusted hop", "10.0.0.1", "1.1.1.1, garbage, 10.0.0.2", "", "10.0.0.2", trusted},
		{"ipv6 xff", "fd00::1", "2001:db8::7", "", "2001:db8::7", trusted},
		{"x-real-ip", "10.0.0.1", "", "198.51.100.9", "198.51.100.9", trusted},
		{"bad x-real-ip", "10.0.0.1", "", "nope", "10.0.0.1", trusted},
		{"mapped v4", "::ffff:10.0.0.1", "198.51.100.1", "", "198.51.100.1", trusted},
		// A proxy that adds a line of its own puts the client it saw last.
		{"several lines: the last one's client", "10.0.0.1", "10.1.2.3\n203.0.113.9", "", "203.0.113.9", trusted},
		{"several lines: walk on into the earlier", "10.0.0.1", "198.51.100.1, 10.0.0.3\n10.0.0.2", "", "198.51.100.1", trusted},
		{"several lines: garbage in an earlier one", "10.0.0.1", "garbage\n10.0.0.2", "", "10.0.0.2", trusted},
		// A zone may hold quotes and commas; it must never reach source_ip.
		{"zone in xff stops the walk", "10.0.0.1", "fe80::1%eth0", "", "10.0.0.1", trusted},
		{"zone in x-real-ip", "10.0.0.1", "", `fe80::1%","automation":"victim`, "10.0.0.1", trusted},
		// Some proxies write the client's port too; it is dropped.
		{"ipv4 with port", "10.0.0.1", "198.51.100.1:51234", "", "198.51.100.1", trusted},
		{"ipv6 with port", "fd00::1", "[2001:db8::7]:443", "", "2001:db8::7", trusted},
		{"ipv6 in brackets", "fd00::1", "[2001:db8::7]", "", "2001:db8::7", trusted},
		{"trusted hop with port walked past", "10.0.0.1", "198.51.100.1:1, 10.0.0.2:2", "", "198.51.100.1", trusted},
		{"x-real-ip with port", "10.0.0.1", "", "198.51.100.9:8080", "198.51.100.9", trusted},
		{"zone with port stops the walk", "10.0.0.1", "[fe80::1%eth0]:80", "", "10.0.0.1", trusted},
		{"bad port stops the walk", "10.0.0.1", "198.51.100.1:99999", "", "10.0.0.1", trusted},
		{"empty brackets stop the walk", "10.0.0.1", "[]", "", "10.0.0.1", trusted},
		{"unbracketed ipv6 with port is not a port", "fd00::1", "2001:db8::7:443", "", "2001:db8::7:443", trusted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peer := netip.MustParseAddr(tc.peer).Unmap()
			got := clientAddr(peer, tc.trusted, lines(tc.xff), []byte(tc.realIP))
			if got.String() != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func FuzzClientAddr(f *testing.F) {
	f.Add("1.2.3.4, 10.0.0.1", "5.6.7.8")
	f.Add("2001:db8::1,,fd00::2", "")
	f.Add("10.0.0.9\nfe80::1%x", `fe80::1%"`)
	f.Fuzz(func(t *testing.T, xff, realIP string) {
		trusted := prefixes{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
		peer := netip.MustParseAddr("10.0.0.1")
		got := clientAddr(peer, trusted, lines(xff), []byte(realIP))
		if !got.IsValid() {
			t.Fatalf("invalid address for %q %q", xff, realIP)
		}
		// The event writes the address as it prints, unescaped.
		if text := got.String(); strings.Trim(text, "0123456789abcdef.:") != "" {
			t.Fatalf("address %q for %q %q holds more than digits, '.' and ':'", text, xff, realIP)
		}
	})
}

func TestLoops(t *testing.T) {
	f := func(marker string, want bool) {
		t.Helper()
		if got := loops([]byte(marker), []byte("me")); got != want {
			t.Errorf("loops(%q) = %v, want %v", marker, got, want)
		}
	}
	f("", false)
	f("a,b", false)
	f("a, me", true)
	f("me", true)
	f("mex,ame", false)
	f("1,2,3,4,5,6,7", false)
	f("1,2,3,4,5,6,7,8", true)
	f(",,, ,", false)
	if got := string(appendLoopHeader(nil, []byte(" a , ,b"), []byte("me"))); got != "a,b,me" {
		t.Errorf("appendLoopHeader = %q", got)
	}
}

func TestEventIDsSortAndDiffer(t *testing.T) {
	var g eventIDs
	prev := ""
	for i := 0; i < 10000; i++ {
		id := string(g.next(nil, 1700000000000))
		if len(id) != 36 || id[14] != '7' || id <= prev {
			t.Fatalf("id %d = %q after %q", i, id, prev)
		}
		prev = id
	}
}
