package bench

import (
	"fmt"
	"strconv"
)

// Body returns a valid JSON object of exactly n bytes (n ≥ MinBodyBytes): an
// order event padded with prose in a "note" string. It holds none of the
// keyword-miss scenario's keywords.
func Body(n int) ([]byte, error) {
	const head = `{"event":"order.created","order":{"id":"SO-20261126-0042","customer":"Jasmine Tea House",` +
		`"total":128.5,"currency":"CNY","items":[{"sku":"GT-500","name":"Jasmine green","qty":2},` +
		`{"sku":"OB-001","name":"Oolong boba","qty":1}]},"note":"`
	const tail = `"}`
	const prose = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
	if n < MinBodyBytes {
		return nil, fmt.Errorf("body of %d bytes is below the minimum %d", n, MinBodyBytes)
	}
	b := make([]byte, 0, n)
	b = append(b, head...)
	for len(b) < n-len(tail) {
		k := min(len(prose), n-len(tail)-len(b))
		b = append(b, prose[:k]...)
	}
	return append(b, tail...), nil
}

var (
	authorizationKey = []byte("Authorization")
	loopKey          = []byte("Hookgate-Loop")
)

// MinBodyBytes is the smallest body Body makes.
const MinBodyBytes = 256

// Requests prepares the requests of scenario s against fleet f: each
// shape's requests spread over every automation of its group, shapes
// interleaved by weight. The result shares bodies and header values
// between requests; treat it as read-only.
func Requests(s *Scenario, f *Fleet) ([]Request, error) {
	if len(s.Shapes) == 0 {
		return nil, fmt.Errorf("scenario %s has no shapes", s.Name)
	}
	bodies := map[int][]byte{}
	// pattern holds one cycle of shape indices, each repeated by weight.
	var pattern []int
	spread := 0
	for i, sh := range s.Shapes {
		if _, ok := bodies[sh.BodyBytes]; !ok {
			b, err := Body(sh.BodyBytes)
			if err != nil {
				return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
			}
			bodies[sh.BodyBytes] = b
		}
		n := fleetAutomations
		if sh.Group != Unknown {
			if sh.Group < 0 || sh.Group >= len(f.Groups) {
				return nil, fmt.Errorf("scenario %s: shape %d names group %d of %d", s.Name, i, sh.Group, len(f.Groups))
			}
			n = len(f.Groups[sh.Group].IDs)
		}
		spread = max(spread, n)
		for range max(sh.Weight, 1) {
			pattern = append(pattern, i)
		}
	}

	// Per-automation values are built once and shared by every request.
	type target struct{ uri, auth, ct, loop []byte }
	targets := make([][]target, len(s.Shapes))
	wrongAuth := []byte("Bearer " + Secret())
	var unknown []target
	for i, sh := range s.Shapes {
		if sh.Group == Unknown {
			if unknown == nil {
				unknown = make([]target, fleetAutomations)
				for j := range unknown {
					unknown[j].uri = []byte("/webhook/flow/" + Secret())
				}
			}
			targets[i] = unknown
			continue
		}
		g := &f.Groups[sh.Group]
		ts := make([]target, len(g.IDs))
		for j := range ts {
			ts[j].uri = []byte("/webhook/flow/" + g.Tokens[j])
			switch sh.Auth {
			case AuthValid:
				if g.Credentials == nil {
					return nil, fmt.Errorf("scenario %s: shape %d sends a valid credential to group %s, which has none", s.Name, i, g.Name)
				}
				ts[j].auth = []byte("Bearer " + g.Credentials[j])
			case AuthWrong:
				ts[j].auth = wrongAuth
			}
			if sh.ClientToken == ClientTokenRepeated {
				ts[j].ct = []byte("repeated-" + g.IDs[j])
			}
			if sh.Loop {
				ts[j].loop = []byte(g.IDs[j])
			}
		}
		targets[i] = ts
	}

	reqs := make([]Request, 0, spread*len(pattern))
	seen := make([]int, len(s.Shapes))
	for range spread {
		for _, si := range pattern {
			sh := &s.Shapes[si]
			ts := targets[si]
			t := &ts[seen[si]%len(ts)]
			seen[si]++
			r := Request{URI: t.uri, Body: bodies[sh.BodyBytes], UniqueClientToken: sh.ClientToken == ClientTokenUnique}
			if t.auth != nil {
				r.Header = append(r.Header, Header{Key: authorizationKey, Value: t.auth})
			}
			if t.ct != nil {
				r.Header = append(r.Header, Header{Key: clientTokenKey, Value: t.ct})
			}
			if t.loop != nil {
				r.Header = append(r.Header, Header{Key: loopKey, Value: t.loop})
			}
			reqs = append(reqs, r)
		}
	}
	return reqs, nil
}

// BareRequests are the requests the bare baseline gets for a body of n
// bytes: the same size and spread of URIs as a scenario's.
func BareRequests(n int) ([]Request, error) {
	b, err := Body(n)
	if err != nil {
		return nil, err
	}
	reqs := make([]Request, 256)
	for i := range reqs {
		reqs[i] = Request{URI: []byte("/webhook/flow/bare" + strconv.Itoa(i) + Secret()), Body: b}
	}
	return reqs, nil
}
