package gateway

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
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
		{"downstream", "downstream: {url: ftp://x}\n" + automation(""), `downstream.url: "ftp://x": use http://, https:// or file:<path>`},
		{"password with a slash", "downstream: {url: \"http://hook:1234/s3cret@engine/in\"}\n" + automation(""), `downstream.url: an '@' follows the host`},
		{"socket on file", "downstream: {socket: /run/engine.sock}\n" + automation(""), `downstream.socket: "/run/engine.sock" needs an http:// downstream.url, got "file:data/events.jsonl"`},
		{"socket on https", "downstream: {url: \"https://u:pw@engine/in\", socket: /run/engine.sock}\n" + automation(""), `downstream.socket: "/run/engine.sock" needs an http:// downstream.url, got "https://engine/in"`},
		{"pipeline", "downstream: {pipeline: -2}\n" + automation(""), "downstream.pipeline: -2 must be between 1 and 1024"},
		{"unknown field", "listn: x\n" + automation(""), "field listn not found"},
		{"bad duration", "idempotency_window: 3 hours\n" + automation(""), `cannot parse duration "3 hours"`},
		{"no tables", "listen: 127.0.0.1:1\n", "tables: no tables"},
		{"duplicate id", "tables:\n  - id: t\n    automations:\n      - {id: a, token: " + goodToken + "}\n      - {id: a, token: " + goodToken + "x}\n", `tables[0].automations[1].id: "a" is already the id of tables[0].automations[0]`},
		{"duplicate token", "tables:\n  - id: t\n    automations:\n      - {id: a, token: " + goodToken + "}\n      - {id: b, token: " + goodToken + "}\n", "tables[0].automations[1].token: is the same as the token of tables[0].automations[0]"},
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
