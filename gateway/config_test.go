package gateway

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/downstream"
)

const goodToken = "abcdefghijklmnopqrstuvwxyz012345"

func noEnv(string) (string, bool) { return "", false }

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
tables:
  - id: t
    automations:
      - {id: a, token: `+goodToken+`}
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Tables[0].Automations[0]
	if cfg.Listen != DefaultListen || cfg.PublicURL != "http://"+DefaultListen || cfg.MaxBodyBytes != 4194304 ||
		time.Duration(cfg.IdempotencyWindow) != 3*time.Hour || cfg.Limits != (Limits{50, 5, 1}) ||
		cfg.Downstream.URL != "file:data/events.jsonl" || time.Duration(cfg.Downstream.Timeout) != 5*time.Second ||
		a.Format != "json" || !*a.Enabled {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestParseEnvSecrets(t *testing.T) {
	env := map[string]string{"TOK": goodToken, "CRED": "c-r-e-d"}
	cfg, err := Parse([]byte(`
tables:
  - id: t
    automations:
      - {id: a, token_env: TOK, credential_env: CRED}
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Tables[0].Automations[0]; a.Token != goodToken || a.Credential != "c-r-e-d" {
		t.Errorf("secrets not resolved: %+v", a)
	}
}

func TestParseErrorsNameFieldAndValue(t *testing.T) {
	automation := func(extra string) string {
		return "tables:\n  - id: t\n    automations:\n      - {id: a, token: " + goodToken + extra + "}\n"
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"11 keywords", automation(`, keywords: [a,b,c,d,e,f,g,h,i,j,k]`), "tables[0].automations[0].keywords: 11 keywords, at most 10"},
		{"empty keyword", automation(`, keywords: [a, ""]`), "tables[0].automations[0].keywords: keyword 1 is empty"},
		{"long keyword", automation(`, keywords: [` + strings.Repeat("x", 257) + `]`), "tables[0].automations[0].keywords: keyword 0 is 257 bytes, at most 256"},
		{"format", automation(`, format: xml`), `tables[0].automations[0].format: "xml" is not one of json, text, none`},
		{"sample", automation(`, sample: "{nope"`), "tables[0].automations[0].sample: is not valid JSON"},
		{"ip_allow", automation(`, ip_allow: ["10.0.0.0/33"]`), `tables[0].automations[0].ip_allow[0]: "10.0.0.0/33" is not an IP address or CIDR`},
		{"short token", "tables:\n  - id: t\n    automations:\n      - {id: a, token: short}\n", "tables[0].automations[0].token: is 5 characters, at least 22"},
		{"missing env", "tables:\n  - id: t\n    automations:\n      - {id: a, token_env: NOPE}\n", `tables[0].automations[0].token_env: environment variable "NOPE" is not set`},
		{"rps above table", automation(`, rps: 60`), "tables[0].automations[0].rps: 60 is above its table's 50 req/s"},
		{"loop url", automation(`, http_step_urls: ["https://gw.example/webhook/flow/` + goodToken + `"]`), `tables[0].automations[0].http_step_urls[0]: calls automation "a"'s own webhook`},
		{"loop url behind a base path", "public_url: https://gw.example/hooks\n" + automation(`, http_step_urls: ["https://gw.example/hooks/webhook/flow/`+goodToken+`"]`), `tables[0].automations[0].http_step_urls[0]: calls automation "a"'s own webhook`},
		{"downstream", "downstream: {url: ftp://x}\n" + automation(""), `downstream.url: "ftp://x": use http://, https:// or file:<path>`},
		{"password with a slash", "downstream: {url: \"http://hook:1234/s3cret@engine/in\"}\n" + automation(""), `downstream.url: an '@' follows the host`},
		{"socket on file", "downstream: {socket: /run/engine.sock}\n" + automation(""), `downstream.socket: "/run/engine.sock" needs an http:// downstream.url, got "file:data/events.jsonl"`},
		{"socket on https", "downstream: {url: \"https://u:pw@engine/in\", socket: /run/engine.sock}\n" + automation(""), `downstream.socket: "/run/engine.sock" needs an http:// downstream.url, got "https://engine/in"`},
		{"pipeline", "downstream: {pipeline: -2}\n" + automation(""), "downstream.pipeline: -2 must be between 1 and 1024"},
		{"unknown field", "listn: x\n" + automation(""), "listn: unknown field"},
		{"bad duration", "idempotency_window: 3 hours\n" + automation(""), `idempotency_window: "3 hours" is not a duration`},
		{"no tables", "listen: 127.0.0.1:1\n", "tables: no tables"},
		{"duplicate id", "tables:\n  - id: t\n    automations:\n      - {id: a, token: " + goodToken + "}\n      - {id: a, token: " + goodToken + "x}\n", `tables[0].automations[1].id: "a" is already the id of tables[0].automations[0]`},
		{"duplicate token", "tables:\n  - id: t\n    automations:\n      - {id: a, token: " + goodToken + "}\n      - {id: b, token: " + goodToken + "}\n", "tables[0].automations[1].token: is the same as the token of tables[0].automations[0]"},
		{"negative sample_thereafter", "log: {sample_thereafter: -1}\n" + automation(""), "log.sample_thereafter: -1 must not be negative"},
		{"negative sample_first", "log: {sample_first: -2}\n" + automation(""), "log.sample_first: -2 must not be negative"},
		{"negative in_flight_ttl", "cluster: {redis_url: \"redis://r:6379/0\", in_flight_ttl: -1s}\n" + automation(""), "cluster.in_flight_ttl: -1s must not be negative"},
		{"negative cluster timeout", "cluster: {redis_url: \"redis://r:6379/0\", timeout: -1s}\n" + automation(""), "cluster.timeout: -1s must not be negative"},
		{"max_cooldown under cooldown", "downstream: {breaker: {max_cooldown: 100ms}}\n" + automation(""), "downstream.breaker.max_cooldown: 100ms is below cooldown 1s"},
		{"negative cooldown", "downstream: {breaker: {cooldown: -1s}}\n" + automation(""), "downstream.breaker.cooldown: -1s must be positive"},
		{"log level", "log: {level: loud}\n" + automation(""), `log.level: "loud" is not one of debug, info, warn, error`},
		{"rate", "limits: {table_rps: -1}\n" + automation(""), "limits.table_rps: -1 is out of range"},
		{"write timeout", "server: {write_timeout: 50ms}\n" + automation(""), "server.write_timeout: 50ms is below the minimum 100ms"},
		{"read timeout", "server: {read_timeout: 99ms}\n" + automation(""), "server.read_timeout: 99ms is below the minimum 100ms"},
		{"idle timeout", "server: {idle_timeout: -1s}\n" + automation(""), "server.idle_timeout: -1s is below the minimum 100ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), goodToken) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := LoadFile("../configs/hookgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ce *ConfigError
	if _, err := LoadFile("no/such/file.yaml"); err == nil || errors.As(err, &ce) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := compile(cfg, nil, newMetrics()); err != nil {
		t.Fatal(err)
	}
}

// FuzzParse: the loader never panics, and every problem names a field.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile("../configs/hookgate.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("tables: [{id: t, automations: [{id: a, token: " + goodToken + ", keywords: [x]}]}]"))
	f.Add([]byte("limits: {table_rps: 0.5}\ntables: []"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Parse(b, noEnv)
		var ce *ConfigError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("error is not a ConfigError: %v", err)
		}
		if ce != nil {
			for _, p := range ce.Problems {
				if p == "" {
					t.Fatal("empty problem")
				}
			}
		}
	})
}

// TestParseShapeErrorsNameFieldNotSecret: a value of the wrong type, an
// unknown key or a key set twice is named by its field path, every such
// problem of the file at once, and a value that may be a secret is never
// quoted, not even its first characters (yaml's own errors quote them).
func TestParseShapeErrorsNameFieldNotSecret(t *testing.T) {
	const secret = "S3cr3t-value-0123456789"
	automation := func(extra string) string {
		return "tables:\n  - id: t\n    automations:\n      - id: a\n        token: " + goodToken + "\n" + extra
	}
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"secret where a list is wanted", automation("        verify: {scheme: github, secrets: " + secret + "}\n"),
			[]string{"tables[0].automations[0].verify.secrets: is a single value (not quoted), not a list"}},
		{"secret where a mapping is wanted", automation("        verify: whsec_" + secret + "\n"),
			[]string{"tables[0].automations[0].verify: is a single value (not quoted), not a mapping"}},
		{"URL where a mapping is wanted", "downstream: \"http://u:" + secret + "@engine/in\"\n" + automation(""),
			[]string{"downstream: is a single value (not quoted), not a mapping"}},
		{"step URL where a list is wanted", automation("        http_step_urls: https://gw/webhook/flow/" + secret + "\n"),
			[]string{"tables[0].automations[0].http_step_urls: is a single value (not quoted), not a list"}},
		{"durations and numbers", "idempotency_window: 3 hours\nlimits: {table_rps: fast}\nmax_body_bytes: 4MiB\n" +
			"downstream: {breaker: {cooldown: 1}}\n" + automation("        enabled: maybe\n"),
			[]string{
				`idempotency_window: "3 hours" is not a duration such as 500ms, 5s or 3h`,
				`limits.table_rps: "fast" is not a number`,
				`max_body_bytes: "4MiB" is not a whole number`,
				`downstream.breaker.cooldown: "1" is not a duration`,
				`tables[0].automations[0].enabled: "maybe" is not true or false`,
			}},
		{"out of range", "max_body_bytes: 99999999999999999999\n" + automation(""),
			[]string{"max_body_bytes: 99999999999999999999 is out of range"}},
		{"list where a mapping is wanted", "limits: [1, 2]\n" + automation(""), []string{"limits: is a list, not a mapping"}},
		{"address where a list is wanted", automation("        ip_allow: 10.0.0.0/8\n"),
			[]string{`tables[0].automations[0].ip_allow: "10.0.0.0/8" is a single value, not a list`}},
		{"unknown nested key", automation("        tokn: " + secret + "\n"), []string{"tables[0].automations[0].tokn: unknown field"}},
		{"unknown key", "listn: x\n" + automation(""), []string{"listn: unknown field"}},
		{"key set twice", automation("        token: " + secret + "\n"), []string{"tables[0].automations[0].token: set twice (lines 5 and 6)"}},
		{"empty file", "", []string{"tables: no tables"}},
		{"two documents", automation("") + "---\n" + automation(""), []string{"more than one YAML document"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), noEnv)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
			for _, s := range []string{secret[:6], goodToken[:6], "whsec_", "u:"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error quotes a secret (%q): %v", s, err)
				}
			}
		})
	}
}

// TestParseMergeKeys: anchors and merge keys, a common way to share an
// automation's settings, decode as before; a key merged in is overridden
// by the mapping's own, not "set twice".
func TestParseMergeKeys(t *testing.T) {
	cfg, err := Parse([]byte(`
tables:
  - id: t
    automations:
      - &base {id: a, token: `+goodToken+`, format: text, keywords: [x]}
      - <<: *base
        id: b
        token: `+goodToken+`b
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Tables[0].Automations[1]; b.ID != "b" || b.Format != "text" || len(b.Keywords) != 1 {
		t.Fatalf("merged automation: %+v", b)
	}
	_, err = Parse([]byte(`
tables:
  - id: t
    automations:
      - &base {id: a, token: `+goodToken+`}
      - <<: [*base, {tokn: x}]
        id: b
`), noEnv)
	if err == nil || !strings.Contains(err.Error(), "tables[0].automations[1].tokn: unknown field") {
		t.Fatalf("unknown key merged in: %v", err)
	}
}

// TestParseHostileAliases: aliases that name their own value, or expand
// to millions of values, are refused, not walked for ever.
func TestParseHostileAliases(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'i'; i++ {
		laughs += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	merges := "m0: &m0 {table_rps: 1}\n"
	for i := 1; i <= 9; i++ {
		merges += fmt.Sprintf("m%d: &m%d {<<: [*m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d]}\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	for name, doc := range map[string]string{
		"cycle":         "tables: &t [{id: x, automations: *t}]\n",
		"merge cycle":   "limits: &l {<<: *l}\ntables: []\n",
		"laughs":        laughs + "tables: []\n",
		"merged laughs": merges + "limits: *m9\ntables: []\n",
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := Parse([]byte(doc), noEnv); done <- err }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("accepted")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Parse did not return")
			}
		})
	}
}

// TestConfigErrorsQuoteNoPassword: a URL whose user name and password are
// not where url.Parse looks for them (one slash after the scheme, a
// missing colon, a '#' in the password) is named without quoting them.
func TestConfigErrorsQuoteNoPassword(t *testing.T) {
	const password = "pa55word"
	automation := "tables:\n  - id: t\n    automations:\n      - {id: a, token: " + goodToken + "}\n"
	tests := []struct{ name, yaml, want string }{
		{"downstream, one slash", `downstream: {url: "http:/user:pa55word@engine/in"}`, "downstream.url:"},
		{"downstream, fragment", `downstream: {url: "https://user:12#pa55word@engine/in"}`, "downstream.url: an '@' follows the host"},
		{"socket, fragment", `downstream: {url: "https://user:12#pa55word@engine/in", socket: /run/e.sock}`, "downstream.socket:"},
		{"downstream, other scheme", `downstream: {url: "ftp://user:pa55word@engine/in"}`, `downstream.url: "ftp://engine/in": use http://`},
		{"redis, one slash", `cluster: {redis_url: "redis:/:pa55word@host:6379"}`, "cluster.redis_url:"},
		{"redis, no colon", `cluster: {redis_url: "redis//:pa55word@host:6379"}`, "cluster.redis_url:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml+"\n"+automation), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error quotes the password: %v", err)
			}
		})
	}
}

// TestCheckRefusesWhatServeRefuses: what `hookgate serve` would refuse
// on opening the flow engine or Redis, or would run with a Client-Token
// claim that can expire mid hand-over, `hookgate check` refuses too.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	automation := "tables:\n  - id: t\n    automations:\n      - {id: a, token: " + goodToken + "}\n"
	redis := "cluster: {redis_url: \"redis://127.0.0.1:6379/0\""
	tests := []struct{ name, yaml, want string }{
		{"prefix with a hash tag", redis + `, prefix: "{hg}:"}`, `cluster.prefix: "{hg}:" has '{' or '}'`},
		{"default claim TTL under the hand-over", redis + "}\ndownstream: {timeout: 2m}", "cluster.in_flight_ttl: 1m0s (the default) must be longer than downstream.timeout 2m0s"},
		{"window under a millisecond", redis + "}\nidempotency_window: 500us", "idempotency_window: 500µs is under 1ms"},
		{"redis db not a number", `cluster: {redis_url: "redis://:pw-secret@127.0.0.1:6379?db=one"}`, `cluster.redis_url: "redis://127.0.0.1:6379": redis: invalid database number: "one"`},
		{"redis path not a db", `cluster: {redis_url: "redis://:pw-secret@127.0.0.1:6379/zero"}`, `cluster.redis_url: "redis://127.0.0.1:6379/zero": redis: invalid database number: "zero"`},
		{"redis dial timeout", `cluster: {redis_url: "redis://127.0.0.1:6379?dial_timeout=soon"}`, `redis: invalid dial timeout: "soon"`},
		{"listen port out of range", `listen: "127.0.0.1:99999"`, `listen: "127.0.0.1:99999" has no valid port`},
		{"admin port not a number", `admin_listen: "127.0.0.1:nine"`, `admin_listen: "127.0.0.1:nine" has no valid port`},
		{"file URL on another host", `downstream: {url: "file://otherhost/x"}`, `downstream.url: "file://otherhost/x" names host "otherhost"`},
		{"file URL of the root", `downstream: {url: "file:/"}`, `downstream.url: "file:/" names no file`},
		{"file URL, empty host and path", `downstream: {url: "file://"}`, `downstream.url: "file://" names no file`},
		{"file URL of localhost's root", `downstream: {url: "file://localhost/"}`, `downstream.url: "file://localhost/" names no file`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml+"\n"+automation), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pw-secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:99999", "127.0.0.1:nine"} {
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			t.Errorf("the listener takes %q", addr)
		}
	}
	// The file URLs the check takes are the ones the sink opens.
	dir := t.TempDir()
	for _, u := range []string{"file://otherhost/x", "file:/", "file://", "file://localhost/", "file:",
		"file:" + dir + "/a.jsonl", "file://" + dir + "/b.jsonl", "file://localhost" + dir + "/c.jsonl"} {
		_, perr := Parse([]byte("downstream: {url: \""+u+"\"}\n"+automation), noEnv)
		sink, oerr := downstream.Open(downstream.Config{URL: u})
		if sink != nil {
			sink.Close()
		}
		if (perr == nil) != (oerr == nil) {
			t.Errorf("%s: check says %v, the sink %v", u, perr, oerr)
		}
	}
}

// TestRestartOnlyChanges: the settings a reload does not apply are each
// named with both values, a secret's never quoted; those it applies are
// not named.
func TestRestartOnlyChanges(t *testing.T) {
	const base = "public_url: http://gw.example\nlimits: {table_rps: 10}\ncluster: {redis_url: \"redis://:pw-one@r:6379/0\"}\ntables: [{id: t, automations: [{id: a, token: " + goodToken + "}]}]\n"
	running, err := Parse([]byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	f := func(change, want string) {
		t.Helper()
		next, err := Parse([]byte(change+base), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(RestartOnlyChanges(running, next), "\n")
		if want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("%q: changes %q, want %q", change, got, want)
		}
		if strings.Contains(got, "pw-") || strings.Contains(got, "adm-") {
			t.Errorf("%q: changes quote a secret: %s", change, got)
		}
	}
	f("", "")
	f("trusted_proxies: [10.0.0.0/8]\n", "")
	f("idempotency_window: 1h\n", "idempotency_window: 1h0m0s (running: 3h0m0s)")
	f("downstream: {breaker: {failures: 9}}\n", "downstream.breaker.failures: 9 (running: 5)")
	f("admin_listen: 127.0.0.1:9\n", `admin_listen: "127.0.0.1:9" (running: "")`)
	f("admin_token: adm-0123456789\n", "admin_token: changed (not quoted)")
	f("downstream: {url: \"https://u:pw-two@engine/in\"}\n", `downstream.url: "https://engine/in" (running: "file:data/events.jsonl")`)
	f("log: {level: debug, sample_thereafter: 3}\n", "") // applied by the reload
	next, err := Parse([]byte(strings.Replace(base, "pw-one", "pw-two", 1)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(RestartOnlyChanges(running, next), "\n"); !strings.HasPrefix(got, "cluster.redis_url: changed (not quoted)") {
		t.Errorf("a new Redis password: %q", got)
	}
}

// TestSignatureToleranceWithinWindow: a standard-webhooks delivery
// verifies up to its tolerance either side of its timestamp, so a replay
// can come twice the tolerance after it; its id must be remembered that
// long, or the replay triggers again.
func TestSignatureToleranceWithinWindow(t *testing.T) {
	sw := func(window, tolerance string) string {
		return "idempotency_window: " + window + `
tables:
  - id: s
    automations:
      - id: sw
        token: tok-sw-0123456789abcdefghijk
        verify: {scheme: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]` + tolerance + `}
`
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"set tolerance past half the window", sw("1h", ", tolerance: 31m"),
			"tables[0].automations[0].verify.tolerance: 31m0s: a delivery verifies up to 31m0s either side of its timestamp, so its id must be remembered twice that long, and idempotency_window is 1h0m0s"},
		{"default tolerance past half the window", sw("9m", ""), "tables[0].automations[0].verify.tolerance: 5m0s (the default): a delivery verifies"},
		{"half the window", sw("1h", ", tolerance: 30m"), ""},
		{"defaults", sw("3h", ""), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), noEnv)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
