package bench

import (
	"slices"
	"testing"
	"time"
)

func TestScheduleOffsets(t *testing.T) {
	tests := []struct {
		rate  float64
		conns int
		d     time.Duration
	}{
		{1000, 1, time.Second},
		{1000, 4, time.Second},
		{30000, 64, 500 * time.Millisecond},
		{7, 3, 2 * time.Second},
		{333.3, 10, 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		s := Schedule{Rate: tc.rate, Conns: tc.conns}
		// Over all connections, request n is due at n/rate: merged and
		// sorted, the offsets are evenly spaced from 0.
		var all []time.Duration
		for c := range tc.conns {
			due := s.Due(c, tc.d)
			for k := range due {
				off := s.Offset(c, k)
				if off >= tc.d {
					t.Fatalf("%+v conn %d: request %d due at %s, past %s", s, c, k, off, tc.d)
				}
				all = append(all, off)
			}
			if s.Offset(c, due) < tc.d {
				t.Fatalf("%+v conn %d: Due %d leaves request %d (at %s) before %s", s, c, due, due, s.Offset(c, due), tc.d)
			}
			// A connection sends every conns/rate seconds.
			if due >= 2 {
				gap := s.Offset(c, 1) - s.Offset(c, 0)
				want := time.Duration(float64(tc.conns) / tc.rate * 1e9)
				if gap < want-1 || gap > want+1 {
					t.Fatalf("%+v: gap %s, want %s", s, gap, want)
				}
			}
		}
		slices.Sort(all)
		wantN := int(tc.rate * tc.d.Seconds())
		if len(all) < wantN-1 || len(all) > wantN+1 {
			t.Fatalf("%+v: %d requests due in %s, want about %d", s, len(all), tc.d, wantN)
		}
		for n, off := range all {
			want := time.Duration(float64(n) * 1e9 / tc.rate)
			if off < want-1 || off > want+1 {
				t.Fatalf("%+v: request %d due at %s, want %s", s, n, off, want)
			}
		}
	}
}

func TestScheduleDueEdges(t *testing.T) {
	s := Schedule{Rate: 100, Conns: 4}
	f := func(conn int, d time.Duration, want int) {
		t.Helper()
		if got := s.Due(conn, d); got != want {
			t.Errorf("Due(%d, %s) = %d, want %d", conn, d, got, want)
		}
	}
	f(0, 0, 0)
	f(0, -time.Second, 0)
	f(0, 1, 1)                   // request 0 is due at 0
	f(3, 30*time.Millisecond, 0) // conn 3's first is due at 30ms, not before
	f(3, 30*time.Millisecond+1, 1)
	f(0, 40*time.Millisecond, 1) // conn 0's second is due at 40ms
	f(0, time.Second, 25)
	f(1, time.Second, 25)
}

func TestLate(t *testing.T) {
	f := func(intended, sent, tol time.Duration, want bool) {
		t.Helper()
		if got := Late(intended, sent, tol); got != want {
			t.Errorf("Late(%s, %s, %s) = %v, want %v", intended, sent, tol, got, want)
		}
	}
	f(time.Second, time.Second, time.Millisecond, false)
	f(time.Second, time.Second+time.Millisecond, time.Millisecond, false)
	f(time.Second, time.Second+time.Millisecond+1, time.Millisecond, true)
	f(time.Second, time.Second-time.Millisecond, time.Millisecond, false) // early is on time
}
