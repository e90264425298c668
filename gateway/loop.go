package gateway

import "bytes"

// The loop marker of SPEC §6: Hookgate-Loop lists, comma-separated, the
// automations an event has passed through.

// loops reports whether a Hookgate-Loop value already holds self or holds
// MaxLoopHops or more ids.
func loops(marker, self []byte) bool {
	n := 0
	for len(marker) > 0 {
		var id []byte
		if id, marker = nextID(marker); len(id) == 0 {
			continue
		}
		if bytes.Equal(id, self) {
			return true
		}
		n++
	}
	return n >= MaxLoopHops
}

// appendLoopHeader appends the Hookgate-Loop value of a forwarded event:
// the ids already in the marker, then self.
func appendLoopHeader(dst, marker, self []byte) []byte {
	forEachID(marker, func(id []byte) {
		dst = append(dst, id...)
		dst = append(dst, ',')
	})
	return append(dst, self...)
}

// forEachID calls f with each non-empty id of a marker.
func forEachID(marker []byte, f func(id []byte)) {
	for len(marker) > 0 {
		var id []byte
		if id, marker = nextID(marker); len(id) > 0 {
			f(id)
		}
	}
}

// nextID cuts the first comma-separated entry off a marker and returns it
// without surrounding space (empty for an empty entry) and the rest.
func nextID(marker []byte) (id, rest []byte) {
	if i := bytes.IndexByte(marker, ','); i >= 0 {
		return bytes.TrimSpace(marker[:i]), marker[i+1:]
	}
	return bytes.TrimSpace(marker), nil
}
