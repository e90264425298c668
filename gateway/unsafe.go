package gateway

import "unsafe"

// b2s converts b to a string without copying. The string is valid only
// while b is neither modified nor reused: use it for lookups and for values
// consumed before the buffer goes back to its pool, and copy it to keep it.
// This is the package's only unsafe conversion.
func b2s(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
