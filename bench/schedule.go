package bench

import "time"

// Schedule is an open-loop arrival schedule: Rate requests per second in
// total, spread round-robin over Conns connections. Request n (counting over
// all connections) is due at n/Rate seconds after the start and is sent on
// connection n mod Conns, so each connection sends every Conns/Rate seconds
// and the connections are offset from each other by 1/Rate.
type Schedule struct {
	Rate  float64
	Conns int
}

// Offset is when connection conn's k-th request (from 0) is due, after the
// start.
func (s Schedule) Offset(conn, k int) time.Duration {
	return s.nth(int64(k)*int64(s.Conns) + int64(conn))
}

// nth is when request n, counting over all connections, is due after
// the start.
func (s Schedule) nth(n int64) time.Duration {
	return time.Duration(float64(n) * 1e9 / s.Rate)
}

// Due is how many of connection conn's requests are due before d: the
// smallest k with Offset(conn, k) ≥ d.
func (s Schedule) Due(conn int, d time.Duration) int {
	if d <= 0 {
		return 0
	}
	x := d.Seconds()*s.Rate - float64(conn)
	k := 0
	if x > 0 {
		k = int(x / float64(s.Conns))
	}
	// The estimate can be off by one either way through float rounding;
	// settle it against Offset so the two always agree.
	for s.Offset(conn, k) < d {
		k++
	}
	for k > 0 && s.Offset(conn, k-1) >= d {
		k--
	}
	return k
}

// Late reports whether a request due at intended and sent at sent (both
// offsets from the start) was sent later than tolerance allows: the
// generator could not keep to the schedule, because the connection was
// still waiting for an earlier answer or the process was not scheduled.
func Late(intended, sent, tolerance time.Duration) bool {
	return sent-intended > tolerance
}
