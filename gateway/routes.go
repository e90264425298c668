package gateway

import (
	"fmt"
	"hash/maphash"

	"github.com/hookgate/hookgate/limiter"
	"github.com/hookgate/hookgate/matcher"
	"github.com/hookgate/hookgate/signature"
)

// webhookPrefix is the path of every webhook URL before its token.
const webhookPrefix = "/webhook/flow/"

// routes is a compiled configuration: everything the request path reads,
// built once per load and read-only afterwards, so requests share it
// without locks.
type routes struct {
	// seed keys the token hash, so callers can't aim at hash collisions.
	seed    maphash.Seed
	byToken tokenTable
	trusted prefixes
	maxBody int
	list    []*route // in config order
	// cfg is the configuration compiled, which a reload compares with
	// (RestartOnlyChanges).
	cfg *Config
}

// route is one compiled automation.
type route struct {
	id, table  string
	token      []byte
	credential []byte // nil: no credential check
	enabled    bool
	allow      prefixes
	match      *matcher.Matcher
	format     string
	bucket     *limiter.Bucket // the automation's
	tableLimit *limiter.Bucket // shared by the table's automations
	// head is the envelope's constant middle:
	// `","table":"…","automation":"…","received_at":"`.
	head []byte
	// formatJSON is `"json"`, `"text"` or `"none"`.
	formatJSON []byte
	// keywordsJSON holds each keyword as a JSON string literal.
	keywordsJSON [][]byte
	// loopSelf is the automation id appended to a forwarded Hookgate-Loop.
	loopSelf []byte
	// stats are the automation's counters and log sampler.
	stats *routeStats
	// verifier checks the request's signature; nil when none is set.
	verifier *signature.Verifier
}

// compile builds routes from a validated configuration. Buckets of
// automations and tables present in prev (a previous generation) are kept,
// with their current state, so a reload does not reset rate limits; their
// new rates are set only once the whole configuration has compiled, so a
// refused one changes none.
func compile(cfg *Config, prev *routes, m *metrics) (*routes, error) {
	rs := &routes{
		seed:    maphash.MakeSeed(),
		maxBody: int(cfg.MaxBodyBytes),
		cfg:     cfg,
	}
	n := 0
	for _, t := range cfg.Tables {
		n += len(t.Automations)
	}
	rs.byToken = newTokenTable(n)
	for _, p := range cfg.TrustedProxies {
		pr, err := parsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: cannot parse %q: %w", p, err)
		}
		rs.trusted = append(rs.trusted, pr)
	}
	oldAut := map[string]*limiter.Bucket{}
	oldTable := map[string]*limiter.Bucket{}
	if prev != nil {
		for _, r := range prev.list {
			oldAut[r.id] = r.bucket
			oldTable[r.table] = r.tableLimit
		}
	}
	type rateChange struct {
		b   *limiter.Bucket
		rps float64
	}
	var rates []rateChange
	matchers := matcherCache{}
	for _, t := range cfg.Tables {
		tableRPS := t.RPS
		if tableRPS == 0 {
			tableRPS = cfg.Limits.TableRPS
		}
		tb := oldTable[t.ID]
		if tb == nil {
			tb = limiter.NewBucket(tableRPS)
		} else {
			rates = append(rates, rateChange{tb, tableRPS})
		}
		for _, a := range t.Automations {
			r, err := compileAutomation(cfg, t.ID, &a, matchers)
			if err != nil {
				return nil, err
			}
			rps := a.RPS
			if rps == 0 {
				rps = cfg.Limits.AnonymousRPS
				if r.credential != nil || r.verifier != nil {
					// A signature is a credential check too (SPEC §12).
					rps = cfg.Limits.AutomationRPS
				}
			}
			r.tableLimit = tb
			r.stats = m.route(t.ID, a.ID)
			if b := oldAut[a.ID]; b != nil {
				rates = append(rates, rateChange{b, rps})
				r.bucket = b
			} else {
				r.bucket = limiter.NewBucket(rps)
			}
			h := maphash.String(rs.seed, a.Token)
			if !rs.byToken.put(h, r) {
				// Two distinct tokens collide in 64 bits: astronomically
				// unlikely, but a reseed would hide a real duplicate.
				return nil, fmt.Errorf("automation %q: token hash collision; restart to reseed", a.ID)
			}
			rs.list = append(rs.list, r)
		}
	}
	for _, c := range rates {
		c.b.SetRate(c.rps)
	}
	return rs, nil
}

// tokenTable finds a route by its token's hash: open addressing with
// linear probing over 16-byte slots, at most half full. With thousands of
// automations the lookup is a cache miss whatever the structure; here it
// is usually one line, where a Go map's group (control word, then the
// slot) is two or three (BenchmarkTokenTable).
type tokenTable struct {
	slots []tokenSlot
	mask  uint64
}

type tokenSlot struct {
	hash uint64
	r    *route // nil: empty
}

// newTokenTable returns an empty table for n routes.
func newTokenTable(n int) tokenTable {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return tokenTable{slots: make([]tokenSlot, size), mask: uint64(size - 1)}
}

// put adds r under h, unless h is there already (false). At most the n
// routes the table was made for may be put.
func (t *tokenTable) put(h uint64, r *route) bool {
	i := h & t.mask
	for ; t.slots[i].r != nil; i = (i + 1) & t.mask {
		if t.slots[i].hash == h {
			return false
		}
	}
	t.slots[i] = tokenSlot{hash: h, r: r}
	return true
}

// get returns the route whose token hashes to h, or nil.
func (t *tokenTable) get(h uint64) *route {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		if s := &t.slots[i]; s.r == nil || s.hash == h {
			return s.r
		}
	}
}

// matcherCache shares one compiled Matcher (immutable, safe for
// concurrent use) among the automations of a configuration that have the
// same keywords: fleets built from a template repeat keyword sets, and a
// shared matcher costs its memory once and stays warm in the cache.
type matcherCache map[string]*matcher.Matcher

func (c matcherCache) compile(keywords []string, ignoreCase bool) (*matcher.Matcher, error) {
	key := fmt.Sprintf("%t%q", ignoreCase, keywords)
	if m := c[key]; m != nil {
		return m, nil
	}
	m, err := matcher.Compile(keywords, ignoreCase)
	if err != nil {
		return nil, err
	}
	c[key] = m
	return m, nil
}

func compileAutomation(cfg *Config, table string, a *Automation, matchers matcherCache) (*route, error) {
	m, err := matchers.compile(a.Keywords, a.KeywordsIgnoreCase)
	if err != nil {
		return nil, fmt.Errorf("automation %q: keywords: %w", a.ID, err)
	}
	r := &route{
		id:      a.ID,
		table:   table,
		token:   []byte(a.Token),
		enabled: a.Enabled == nil || *a.Enabled,
		match:   m,
		format:  a.Format,
	}
	if a.Credential != "" {
		r.credential = []byte(a.Credential)
	}
	if a.Verify != nil {
		v, err := signature.Compile(a.Verify.SignatureConfig())
		if err != nil {
			return nil, fmt.Errorf("automation %q: %w", a.ID, err)
		}
		r.verifier = v
	}
	for _, p := range a.IPAllow {
		pr, err := parsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("automation %q: ip_allow: cannot parse %q: %w", a.ID, p, err)
		}
		r.allow = append(r.allow, pr)
	}
	h := append([]byte(nil), `","table":`...)
	h = appendJSONString(h, table)
	h = append(h, `,"automation":`...)
	h = appendJSONString(h, a.ID)
	r.head = append(h, `,"received_at":"`...)
	r.formatJSON = appendJSONString(nil, a.Format)
	for _, k := range a.Keywords {
		r.keywordsJSON = append(r.keywordsJSON, appendJSONString(nil, k))
	}
	r.loopSelf = []byte(a.ID)
	return r, nil
}

// lookup finds the automation of a webhook token. The map is keyed by a
// seeded hash and the token itself is compared in constant time, so the
// lookup's timing says nothing about how much of a guess was right.
func (rs *routes) lookup(token []byte) *route {
	r := rs.byToken.get(maphash.Bytes(rs.seed, token))
	if r == nil || !constantTimeEqual(r.token, token) {
		return nil
	}
	return r
}
