package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/valyala/fastjson"
	"go.yaml.in/yaml/v3"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/downstream"
	"github.com/hookgate/hookgate/matcher"
	"github.com/hookgate/hookgate/signature"
)

// Config is the YAML configuration file (SPEC §8). Zero fields take the
// defaults documented beside them; Load fills them in and validates.
type Config struct {
	// Listen is the webhook listener's address. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// PublicURL is the base of the printed webhook URLs. Default http://<listen>.
	PublicURL string `yaml:"public_url"`
	// AdminListen is the health/metrics/reload listener; "" turns it off.
	AdminListen string `yaml:"admin_listen"`
	// AdminToken, when set, is the Bearer token the admin listener requires.
	AdminToken string `yaml:"admin_token"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For / X-Real-IP is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxBodyBytes is the body cap. Default 4194304 (4 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// IdempotencyWindow is how long a Client-Token is remembered. Default 3h.
	IdempotencyWindow Duration `yaml:"idempotency_window"`
	// IdempotencyCapacity bounds the Client-Tokens remembered at once; past
	// it new tokens are refused (429) rather than an old one forgotten.
	// Default 4,000,000.
	IdempotencyCapacity int `yaml:"idempotency_capacity"`
	// Limits are the default rate limits (SPEC §5).
	Limits Limits `yaml:"limits"`
	// Downstream is where accepted events go (SPEC §7).
	Downstream Downstream `yaml:"downstream"`
	// Server holds the webhook listener's protective limits.
	Server ServerLimits `yaml:"server"`
	// Cluster, when redis_url is set, shares rate limits and Client-Tokens
	// with every gateway on the same Redis (SPEC §11).
	Cluster Cluster `yaml:"cluster"`
	// Log configures the structured log.
	Log Log `yaml:"log"`
	// Tables own the automations.
	Tables []Table `yaml:"tables"`
}

// Limits are rates in requests per second; each bucket's burst is one
// second's rate.
type Limits struct {
	TableRPS      float64 `yaml:"table_rps"`      // default 50
	AutomationRPS float64 `yaml:"automation_rps"` // with a credential, default 5
	AnonymousRPS  float64 `yaml:"anonymous_rps"`  // without a credential, default 1
}

// Downstream is the flow engine hand-over.
type Downstream struct {
	// URL is http(s)://… or file:<path>. Default file:data/events.jsonl.
	URL string `yaml:"url"`
	// Socket is the path of a Unix domain socket on which a flow engine on
	// this machine serves HTTP; with it, events are POSTed to URL's path
	// (URL's host is the Host header) over the socket instead of TCP.
	// Needs an http:// URL. Default "": TCP.
	Socket string `yaml:"socket"`
	// Timeout bounds one hand-over. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// MaxConns bounds the connections to the flow engine. Default 512.
	MaxConns int `yaml:"max_conns"`
	// Pipeline is how many events may be in flight on one connection to
	// the flow engine: 1 sends one at a time; more pipelines HTTP/1.1
	// requests, for an engine that answers in order and quickly. Default 1.
	Pipeline int `yaml:"pipeline"`
	// Breaker sheds hand-overs while the flow engine keeps failing.
	Breaker Breaker `yaml:"breaker"`
}

// Breaker is the flow engine circuit breaker: after Failures consecutive
// failed hand-overs it answers 503 at once for Cooldown, then lets one
// probe through; each failed probe doubles the cooldown up to MaxCooldown.
type Breaker struct {
	Failures    int      `yaml:"failures"`     // default 5
	Cooldown    Duration `yaml:"cooldown"`     // default 1s
	MaxCooldown Duration `yaml:"max_cooldown"` // default 30s
}

// ServerLimits protect the webhook listener from slow and hostile clients.
// All are on by default.
type ServerLimits struct {
	ReadTimeout    Duration `yaml:"read_timeout"`     // whole request incl. body, default 10s
	WriteTimeout   Duration `yaml:"write_timeout"`    // default 10s
	IdleTimeout    Duration `yaml:"idle_timeout"`     // keep-alive idle, default 60s
	MaxHeaderBytes int      `yaml:"max_header_bytes"` // request line + headers, default 8192
	MaxConnsPerIP  int      `yaml:"max_conns_per_ip"` // default 1024
	Concurrency    int      `yaml:"concurrency"`      // connections served at once, default 65536
}

// Cluster configures the shared state of several gateways.
type Cluster struct {
	// RedisURL is redis://[:password@]host:port/db; "" keeps all state in
	// the process.
	RedisURL string `yaml:"redis_url"`
	// Timeout bounds every Redis command (default 200ms): no request waits
	// longer on Redis.
	Timeout Duration `yaml:"timeout"`
	// Prefix namespaces every key (default "hookgate:").
	Prefix string `yaml:"prefix"`
	// InFlightTTL bounds how long a claimed Client-Token stays in flight
	// if its gateway dies mid-request (default 1m; keep it above
	// downstream.timeout).
	InFlightTTL Duration `yaml:"in_flight_ttl"`
}

// Log configures zap.
type Log struct {
	Level string `yaml:"level"` // debug | info | warn | error, default info
	// SampleFirst request lines are written per second for each
	// (automation, outcome); then every SampleThereafter-th (0: none).
	// Defaults 20 and 0.
	SampleFirst      int `yaml:"sample_first"`
	SampleThereafter int `yaml:"sample_thereafter"`
}

// Table owns automations; its rate limit is shared by all of them.
type Table struct {
	ID          string       `yaml:"id"`
	RPS         float64      `yaml:"rps"`
	Automations []Automation `yaml:"automations"`
}

// Automation is one flow with one webhook trigger.
type Automation struct {
	ID                 string   `yaml:"id"`
	Token              string   `yaml:"token"`
	TokenEnv           string   `yaml:"token_env"`
	Enabled            *bool    `yaml:"enabled"` // default true
	Keywords           []string `yaml:"keywords"`
	KeywordsIgnoreCase bool     `yaml:"keywords_ignore_case"`
	Format             string   `yaml:"format"` // json | text | none, default json
	Sample             string   `yaml:"sample"`
	Credential         string   `yaml:"credential"`
	CredentialEnv      string   `yaml:"credential_env"`
	IPAllow            []string `yaml:"ip_allow"`
	HTTPStepURLs       []string `yaml:"http_step_urls"`
	RPS                float64  `yaml:"rps"`
	// Verify checks a signature instead of, or besides, the credential.
	Verify *Verify `yaml:"verify"`
}

// Verify is an automation's signature check (SPEC §12).
type Verify struct {
	// Scheme is standard-webhooks, github, dingtalk or hmac-sha256.
	Scheme string `yaml:"scheme"`
	// Secrets, or SecretsEnv naming a variable that holds them separated
	// by commas or spaces; any one matching passes, so a secret can be
	// rotated without downtime.
	Secrets    []string `yaml:"secrets"`
	SecretsEnv string   `yaml:"secrets_env"`
	// Tolerance is the timestamp window (default 5m; dingtalk 1h).
	Tolerance Duration `yaml:"tolerance"`
	// Header, Encoding and Prefix: see the README's scheme table.
	Header   string `yaml:"header"`
	Encoding string `yaml:"encoding"`
	Prefix   string `yaml:"prefix"`
}

// SignatureConfig converts v to the signature package's Config, secrets
// resolved.
func (v *Verify) SignatureConfig() signature.Config {
	return signature.Config{
		Scheme: v.Scheme, Secrets: v.Secrets, Tolerance: time.Duration(v.Tolerance),
		Header: v.Header, Encoding: v.Encoding, Prefix: v.Prefix,
	}
}

// Duration is a time.Duration written as "5s", "3h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("cannot parse duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// Defaults of SPEC §5, §7 and §8.
const (
	DefaultListen              = "127.0.0.1:8080"
	DefaultMaxBodyBytes        = 4 << 20
	DefaultIdempotencyWindow   = 3 * time.Hour
	DefaultIdempotencyCapacity = 4_000_000
	DefaultTableRPS            = 50
	DefaultAutomationRPS       = 5
	DefaultAnonymousRPS        = 1
	DefaultDownstreamURL       = "file:data/events.jsonl"
	DefaultDownstreamTimeout   = 5 * time.Second
	DefaultDownstreamMaxConns  = 512
	MaxDownstreamPipeline      = 1024
	// MaxKeywords and MaxKeywordBytes bound an automation's keywords (SPEC §4).
	MaxKeywords     = 10
	MaxKeywordBytes = 256
	// MaxLoopHops is the Hookgate-Loop length that is refused (SPEC §6).
	MaxLoopHops = 8
	// minTokenLen is 22 URL-safe base64 characters: 132 bits.
	minTokenLen = 22
	// minServerTimeout is the shortest server.read_timeout,
	// idle_timeout and write_timeout.
	minServerTimeout = 100 * time.Millisecond
)

// ConfigError lists every invalid field of a configuration file, each
// naming the field and the value (never a secret's value).
type ConfigError struct {
	File     string
	Problems []string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	return b.String()
}

// reloadable are the top-level keys a reload applies; every other
// setting is read once, at start (README, Reload).
var reloadable = map[string]bool{"public_url": true, "trusted_proxies": true, "limits": true, "tables": true, "log": true}

// secretSettings are the restart-only settings that may hold a secret.
var secretSettings = map[string]bool{"admin_token": true, "downstream.url": true, "cluster.redis_url": true}

// RestartOnlyChanges lists the settings that differ between the running
// configuration and next but are applied only at start, each named with
// both values (a secret's not quoted). A reload applies the rest of next
// and keeps these at their running values (keepStartOnly) until the next
// start; the list is logged, answered and counted so that no operator
// takes them for applied.
func RestartOnlyChanges(running, next *Config) []string {
	var problems []string
	var walk func(path string, a, b reflect.Value)
	walk = func(path string, a, b reflect.Value) {
		if a.Kind() == reflect.Struct && a.Type() != durationType {
			for i := 0; i < a.NumField(); i++ {
				name := yamlKey(a.Type().Field(i))
				if path == "" && reloadable[name] {
					continue
				}
				walk(joinPath(path, name), a.Field(i), b.Field(i))
			}
			return
		}
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return
		}
		show := func(v reflect.Value) string {
			switch x := v.Interface().(type) {
			case Duration:
				return time.Duration(x).String()
			case string:
				if secretSettings[path] {
					return fmt.Sprintf("%q", RedactURL(x))
				}
				return fmt.Sprintf("%q", x)
			}
			return fmt.Sprint(v.Interface())
		}
		was, now := show(a), show(b)
		if secretSettings[path] && (path == "admin_token" || was == now) {
			problems = append(problems, path+": changed (not quoted); "+appliedAtStart)
			return
		}
		problems = append(problems, fmt.Sprintf("%s: %s (running: %s); %s", path, now, was, appliedAtStart))
	}
	walk("", reflect.ValueOf(*running), reflect.ValueOf(*next))
	return problems
}

const appliedAtStart = "applied only at start: it takes effect when hookgate restarts"

// keepStartOnly returns next with every setting a reload does not apply
// taken from running, so the generation a reload swaps in is what runs:
// none of its settings is half applied (the body cap, say, live for the
// checks but not for the buffers sized from it at start).
func keepStartOnly(running, next *Config) *Config {
	c := *next
	from, to := reflect.ValueOf(running).Elem(), reflect.ValueOf(&c).Elem()
	for i := 0; i < to.NumField(); i++ {
		if !reloadable[yamlKey(to.Type().Field(i))] {
			to.Field(i).Set(from.Field(i))
		}
	}
	return &c
}

// LoadFile reads, defaults and validates the YAML file at path.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	cfg, err := Parse(data, os.LookupEnv)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	return cfg, nil
}

// Parse decodes a YAML document, fills in defaults, resolves *_env secrets
// through lookupEnv and validates the result. Unknown fields are errors, so
// a misspelt key can't silently fall back to a default.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var doc, more yaml.Node
	docs := yaml.NewDecoder(bytes.NewReader(data))
	if err := docs.Decode(&doc); err != nil && err != io.EOF {
		return nil, &ConfigError{Problems: []string{yamlProblem(err)}}
	}
	if err := docs.Decode(&more); err != io.EOF {
		// A second document would be ignored, and a syntax error in it
		// too: refuse both.
		p := "the file holds more than one YAML document (a line \"---\" starts another); put everything in one"
		if err != nil {
			p = yamlProblem(err)
		}
		return nil, &ConfigError{Problems: []string{p}}
	}
	shape := newShapeChecker(len(data))
	shape.check("", "", &doc, reflect.TypeFor[Config]())
	if len(shape.problems) > 0 {
		return nil, &ConfigError{Problems: shape.problems}
	}
	// The checked document is decoded as it is, not the file again: the
	// shape check has already refused unknown keys.
	var cfg Config
	if doc.Kind != 0 {
		if err := doc.Decode(&cfg); err != nil {
			return nil, &ConfigError{Problems: []string{yamlProblem(err)}}
		}
	}
	cfg.setDefaults()
	v := validator{lookupEnv: lookupEnv}
	v.config(&cfg)
	if len(v.problems) > 0 {
		return nil, &ConfigError{Problems: v.problems}
	}
	return &cfg, nil
}

// yamlProblem shortens a yaml decoding error to its useful lines. The
// shape check names type errors by their field first; any yaml still
// finds has the value it quotes (`…`) cut out, as it may be a secret.
func yamlProblem(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return yamlQuoted.ReplaceAllString(strings.Join(te.Errors, "; "), "(value not quoted)")
	}
	return err.Error()
}

var yamlQuoted = regexp.MustCompile("`[^`]*`")

// MaxEventBytes is the size of the largest event the gateway hands over
// for a JSON body at the cap, envelope included — what a sink should be
// ready to keep a buffer for. A text body's escaping can make its event
// larger; a sink takes such an event all the same, it just does not keep
// a buffer for it.
func (c *Config) MaxEventBytes() int { return bigBufferSize(int(c.MaxBodyBytes)) }

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.IdempotencyWindow == 0 {
		c.IdempotencyWindow = Duration(DefaultIdempotencyWindow)
	}
	if c.IdempotencyCapacity == 0 {
		c.IdempotencyCapacity = DefaultIdempotencyCapacity
	}
	if c.Limits.TableRPS == 0 {
		c.Limits.TableRPS = DefaultTableRPS
	}
	if c.Limits.AutomationRPS == 0 {
		c.Limits.AutomationRPS = DefaultAutomationRPS
	}
	if c.Limits.AnonymousRPS == 0 {
		c.Limits.AnonymousRPS = DefaultAnonymousRPS
	}
	if c.Downstream.URL == "" {
		c.Downstream.URL = DefaultDownstreamURL
	}
	if c.Downstream.Timeout == 0 {
		c.Downstream.Timeout = Duration(DefaultDownstreamTimeout)
	}
	if c.Downstream.MaxConns == 0 {
		c.Downstream.MaxConns = DefaultDownstreamMaxConns
	}
	if c.Downstream.Pipeline == 0 {
		c.Downstream.Pipeline = 1
	}
	{
		b := &c.Downstream.Breaker
		if b.Failures == 0 {
			b.Failures = 5
		}
		if b.Cooldown == 0 {
			b.Cooldown = Duration(time.Second)
		}
		if b.MaxCooldown == 0 {
			b.MaxCooldown = Duration(30 * time.Second)
		}
	}
	s := &c.Server
	if s.ReadTimeout == 0 {
		s.ReadTimeout = Duration(10 * time.Second)
	}
	if s.WriteTimeout == 0 {
		s.WriteTimeout = Duration(10 * time.Second)
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = Duration(60 * time.Second)
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 8192
	}
	if s.MaxConnsPerIP == 0 {
		s.MaxConnsPerIP = 1024
	}
	if s.Concurrency == 0 {
		s.Concurrency = 65536
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.SampleFirst == 0 {
		c.Log.SampleFirst = 20
	}
	for ti := range c.Tables {
		for ai := range c.Tables[ti].Automations {
			a := &c.Tables[ti].Automations[ai]
			if a.Format == "" {
				a.Format = "json"
			}
			if a.Enabled == nil {
				t := true
				a.Enabled = &t
			}
		}
	}
}

// validator collects problems; each names the field path and the value.
type validator struct {
	lookupEnv func(string) (string, bool)
	problems  []string
}

func (v *validator) addf(field, format string, args ...any) {
	v.problems = append(v.problems, field+": "+fmt.Sprintf(format, args...))
}

func (v *validator) config(c *Config) {
	v.hostPort("listen", c.Listen)
	if c.AdminListen != "" {
		v.hostPort("admin_listen", c.AdminListen)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.addf("public_url", "%q is not an http(s) URL", c.PublicURL)
	}
	for i, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			v.addf(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR", p)
		}
	}
	if c.MaxBodyBytes < 0 || c.MaxBodyBytes > 1<<30 {
		v.addf("max_body_bytes", "%d is out of range 1..1073741824", c.MaxBodyBytes)
	}
	if c.IdempotencyWindow < 0 {
		v.addf("idempotency_window", "%s is negative", time.Duration(c.IdempotencyWindow))
	}
	if c.IdempotencyCapacity < 0 {
		v.addf("idempotency_capacity", "%d is negative", c.IdempotencyCapacity)
	}
	v.rate("limits.table_rps", c.Limits.TableRPS)
	v.rate("limits.automation_rps", c.Limits.AutomationRPS)
	v.rate("limits.anonymous_rps", c.Limits.AnonymousRPS)
	v.downstream(&c.Downstream)
	if c.Cluster.RedisURL != "" {
		if u, err := url.Parse(c.Cluster.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			v.addf("cluster.redis_url", "%q is not a redis:// URL", RedactURL(c.Cluster.RedisURL))
		} else if err := cluster.CheckURL(c.Cluster.RedisURL); err != nil {
			v.addf("cluster.redis_url", "%q: %v", RedactURL(c.Cluster.RedisURL), err)
		}
		v.notNegative("cluster.timeout", c.Cluster.Timeout)
		v.notNegative("cluster.in_flight_ttl", c.Cluster.InFlightTTL)
		// The cluster's defaults are applied when it is opened; the
		// claim must outlast a hand-over whichever applies.
		ttl, which := c.Cluster.InFlightTTL, ""
		if ttl == 0 {
			ttl, which = Duration(cluster.DefaultInFlightTTL), " (the default)"
		}
		if ttl > 0 && ttl <= c.Downstream.Timeout {
			v.addf("cluster.in_flight_ttl", "%s%s must be longer than downstream.timeout %s, or a slow hand-over loses its claim",
				time.Duration(ttl), which, time.Duration(c.Downstream.Timeout))
		}
		if strings.ContainsAny(c.Cluster.Prefix, "{}") {
			v.addf("cluster.prefix", "%q has '{' or '}', which Redis Cluster reads as a hash tag", c.Cluster.Prefix)
		}
		if w := time.Duration(c.IdempotencyWindow); w > 0 && w < time.Millisecond {
			v.addf("idempotency_window", "%s is under 1ms, the shortest Redis keeps", w)
		}
	}
	v.server(&c.Server)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.addf("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.SampleFirst < 0 {
		v.addf("log.sample_first", "%d must not be negative", c.Log.SampleFirst)
	}
	if c.Log.SampleThereafter < 0 {
		v.addf("log.sample_thereafter", "%d must not be negative", c.Log.SampleThereafter)
	}
	if len(c.Tables) == 0 {
		v.addf("tables", "no tables: at least one table with one automation is needed")
	}
	tableIDs := map[string]string{}
	autIDs := map[string]string{}
	tokens := map[string]string{}
	for ti := range c.Tables {
		t := &c.Tables[ti]
		tp := fmt.Sprintf("tables[%d]", ti)
		if v.id(tp+".id", t.ID) {
			if prev, ok := tableIDs[t.ID]; ok {
				v.addf(tp+".id", "%q is already the id of %s", t.ID, prev)
			}
			tableIDs[t.ID] = tp
		}
		if t.RPS != 0 {
			v.rate(tp+".rps", t.RPS)
		}
		for ai := range t.Automations {
			a := &t.Automations[ai]
			ap := fmt.Sprintf("%s.automations[%d]", tp, ai)
			if v.id(ap+".id", a.ID) {
				if prev, ok := autIDs[a.ID]; ok {
					v.addf(ap+".id", "%q is already the id of %s", a.ID, prev)
				}
				autIDs[a.ID] = ap
			}
			v.automation(ap, c, t, a, tokens)
		}
	}
}

func (v *validator) hostPort(field, s string) {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return
	}
	// Host names such as localhost:8080 are left to the listener; the
	// port is checked as the listener reads it (a number up to 65535, or
	// a service name).
	_, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		v.addf(field, "%q is not host:port", s)
		return
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		v.addf(field, "%q has no valid port", s)
	}
}

func (v *validator) notNegative(field string, d Duration) {
	if d < 0 {
		v.addf(field, "%s must not be negative", time.Duration(d))
	}
}

func (v *validator) rate(field string, r float64) {
	if !(r > 0 && r <= 1e6) {
		v.addf(field, "%g is out of range (0, 1000000]", r)
	}
}

func (v *validator) id(field, id string) bool {
	if id == "" {
		v.addf(field, "is empty")
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			v.addf(field, "%q has %q; ids use letters, digits, '_', '-' and '.'", id, string(c))
			return false
		}
	}
	if len(id) > 128 {
		v.addf(field, "%q is %d bytes, at most 128", id, len(id))
		return false
	}
	return true
}

func (v *validator) downstream(d *Downstream) {
	switch {
	case strings.HasPrefix(d.URL, "file:"):
		// As the sink reads it: file:path, file:///path or
		// file://localhost/path.
		p := strings.TrimPrefix(d.URL, "file:")
		if rest, ok := strings.CutPrefix(p, "//"); ok {
			host, path, _ := strings.Cut(rest, "/")
			if host != "" && host != "localhost" {
				v.addf("downstream.url", "%q names host %q; only local files are supported", d.URL, host)
				break
			}
			p = "/" + path
		}
		if p == "" || p == "/" {
			v.addf("downstream.url", "%q names no file", d.URL)
		}
	case strings.HasPrefix(d.URL, "http://"), strings.HasPrefix(d.URL, "https://"):
		u, err := url.Parse(d.URL)
		switch {
		case err != nil || u.Host == "":
			v.addf("downstream.url", "%q is not a valid URL", RedactURL(d.URL))
		case downstream.SplitUserinfo(u), strings.Contains(u.Fragment, "@"):
			// An '@' in the fragment: a password holding '#' ended
			// the host early.
			v.addf("downstream.url", "%s; %s", downstream.UserinfoSplit, downstream.UserinfoHint)
		}
	default:
		v.addf("downstream.url", "%q: use http://, https:// or file:<path>", RedactURL(d.URL))
	}
	if d.Socket != "" && !strings.HasPrefix(d.URL, "http://") {
		v.addf("downstream.socket", "%q needs an http:// downstream.url, got %q", d.Socket, RedactURL(d.URL))
	}
	if d.Timeout <= 0 {
		v.addf("downstream.timeout", "%s must be positive", time.Duration(d.Timeout))
	}
	if d.MaxConns < 1 {
		v.addf("downstream.max_conns", "%d must be at least 1", d.MaxConns)
	}
	if d.Pipeline < 1 || d.Pipeline > MaxDownstreamPipeline {
		v.addf("downstream.pipeline", "%d must be between 1 and %d", d.Pipeline, MaxDownstreamPipeline)
	}
	if d.Breaker.Failures < 1 {
		v.addf("downstream.breaker.failures", "%d must be at least 1", d.Breaker.Failures)
	}
	switch b := d.Breaker; {
	case b.Cooldown <= 0:
		v.addf("downstream.breaker.cooldown", "%s must be positive", time.Duration(b.Cooldown))
	case b.MaxCooldown < b.Cooldown:
		v.addf("downstream.breaker.max_cooldown", "%s is below cooldown %s", time.Duration(b.MaxCooldown), time.Duration(b.Cooldown))
	}
}

// RedactURL drops a URL's userinfo, query and fragment, which may hold
// secrets. A URL that still holds an '@' has a user name and password
// where url.Parse does not take them for one (http:/user:pw@host,
// redis//:pw@host, a password holding '#'): nothing of it is quoted.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	r := u.String()
	if strings.Contains(r, "@") {
		return "<URL with an '@' outside its user name and password, not quoted>"
	}
	return r
}

func (v *validator) server(s *ServerLimits) {
	for _, d := range []struct {
		field string
		v     Duration
	}{{"server.read_timeout", s.ReadTimeout}, {"server.write_timeout", s.WriteTimeout}, {"server.idle_timeout", s.IdleTimeout}} {
		// Below the minimum, the connections' coarse clock
		// (connDeadlines) could not keep three quarters of it.
		if d.v < Duration(minServerTimeout) {
			v.addf(d.field, "%s is below the minimum %s", time.Duration(d.v), minServerTimeout)
		}
	}
	if s.MaxHeaderBytes < 1024 || s.MaxHeaderBytes > 1<<20 {
		v.addf("server.max_header_bytes", "%d is out of range 1024..1048576", s.MaxHeaderBytes)
	}
	if s.MaxConnsPerIP < 1 {
		v.addf("server.max_conns_per_ip", "%d must be at least 1", s.MaxConnsPerIP)
	}
	if s.Concurrency < 1 {
		v.addf("server.concurrency", "%d must be at least 1", s.Concurrency)
	}
}

func (v *validator) automation(ap string, c *Config, t *Table, a *Automation, tokens map[string]string) {
	token := v.secret(ap, "token", a.Token, a.TokenEnv, true)
	if token != "" {
		if prev, ok := tokens[token]; ok {
			v.addf(ap+".token", "is the same as the token of %s; every automation needs its own", prev)
		}
		tokens[token] = ap
	}
	a.Token = token
	a.Credential = v.secret(ap, "credential", a.Credential, a.CredentialEnv, false)
	if err := matcher.Check(a.Keywords); err != nil {
		v.addf(ap+".keywords", "%v", err)
	}
	switch a.Format {
	case "json", "text", "none":
	default:
		v.addf(ap+".format", "%q is not one of json, text, none", a.Format)
	}
	if a.Sample != "" {
		if err := fastjson.Validate(a.Sample); err != nil {
			v.addf(ap+".sample", "is not valid JSON: %v", err)
		}
	}
	for i, p := range a.IPAllow {
		if _, err := parsePrefix(p); err != nil {
			v.addf(fmt.Sprintf("%s.ip_allow[%d]", ap, i), "%q is not an IP address or CIDR", p)
		}
	}
	if a.Verify != nil {
		v.verify(ap, a.Verify, time.Duration(c.IdempotencyWindow))
	}
	if a.RPS != 0 {
		v.rate(ap+".rps", a.RPS)
		tableRPS := t.RPS
		if tableRPS == 0 {
			tableRPS = c.Limits.TableRPS
		}
		if a.RPS > tableRPS {
			v.addf(ap+".rps", "%g is above its table's %g req/s", a.RPS, tableRPS)
		}
	}
	for i, s := range a.HTTPStepURLs {
		field := fmt.Sprintf("%s.http_step_urls[%d]", ap, i)
		u, err := url.Parse(s)
		if err != nil {
			v.addf(field, "%q is not a valid URL", RedactURL(s))
			continue
		}
		if token != "" && callsWebhook(u, token) {
			v.addf(field, "calls automation %q's own webhook, a loop (SPEC §6): change the HTTP step's URL", a.ID)
		}
	}
}

// callsWebhook reports whether u's path ends in the webhook path of
// token: the gateway's own path, or the one a public_url with a base path
// (a proxy's /hooks) prints, which the proxy maps to it. The token is
// secret, so no other endpoint has it in its path.
func callsWebhook(u *url.URL, token string) bool {
	p := strings.TrimRight(u.Path, "/")
	return strings.HasSuffix(p, webhookPrefix+token)
}

// secret resolves a value given inline or through an environment variable.
// Problems never quote the secret itself.
func (v *validator) secret(ap, name, inline, env string, required bool) string {
	field := ap + "." + name
	if inline != "" && env != "" {
		v.addf(field, "both %s and %s_env are set; use one", name, name)
		return ""
	}
	val := inline
	if env != "" {
		s, ok := v.lookupEnv(env)
		if !ok || s == "" {
			v.addf(field+"_env", "environment variable %q is not set", env)
			return ""
		}
		val = s
		field += "_env"
	}
	if val == "" {
		if required {
			v.addf(field, "is empty; generate one with `hookgate token`")
		}
		return ""
	}
	if len(val) < minTokenLen && name == "token" {
		v.addf(field, "is %d characters, at least %d (128 bits of randomness)", len(val), minTokenLen)
	}
	for i := 0; i < len(val); i++ {
		c := val[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if name == "credential" {
			ok = c > ' ' && c < 0x7f // any visible ASCII, as a header value
		}
		if !ok && name == "credential" {
			v.addf(field, "has a character at offset %d that is not visible ASCII", i)
			break
		}
		if !ok {
			v.addf(field, "has a character at offset %d that is not URL-safe (A-Z a-z 0-9 - _)", i)
			break
		}
	}
	return val
}

// parsePrefix parses a CIDR or a bare address (a one-address prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// verify resolves the secrets of a verify block and checks it compiles,
// and that a delivery id is remembered as long as a replay of it verifies.
// Problems never quote a secret.
func (v *validator) verify(ap string, vf *Verify, window time.Duration) {
	if len(vf.Secrets) > 0 && vf.SecretsEnv != "" {
		v.addf(ap+".verify.secrets", "both secrets and secrets_env are set; use one")
		return
	}
	if vf.SecretsEnv != "" {
		s, ok := v.lookupEnv(vf.SecretsEnv)
		if !ok || strings.TrimSpace(s) == "" {
			v.addf(ap+".verify.secrets_env", "environment variable %q is not set", vf.SecretsEnv)
			return
		}
		vf.Secrets = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
	}
	if len(vf.Secrets) == 0 {
		v.addf(ap+".verify.secrets", "no secrets: set secrets or secrets_env")
		return
	}
	ver, err := signature.Compile(vf.SignatureConfig())
	if err != nil {
		// err names the field already: "verify.scheme: …".
		v.problems = append(v.problems, ap+"."+err.Error())
		return
	}
	if span := ver.ReplaySpan(); span > window {
		tol, which := span/2, ""
		if vf.Tolerance == 0 {
			which = " (the default)"
		}
		v.addf(ap+".verify.tolerance", "%s%s: a delivery verifies up to %s either side of its timestamp, so its id must be remembered twice that long, and idempotency_window is %s; lower the tolerance or raise the window",
			tol, which, tol, window)
	}
}
