package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

func TestCLICheck(t *testing.T) {
	out, err := run(t, "check", "-config", "../../configs/hookgate.yaml")
	if err != nil || !strings.Contains(out, "OK, 1 tables, 2 automations") {
		t.Fatalf("check of the example: %v\n%s", err, out)
	}
	for _, want := range []string{
		`tbl_menu/new_product: enabled, format json, keywords ["product" "新品"], 5 req/s (table 50), allow 127.0.0.0/8,::1/128, credential on`,
		`tbl_menu/group_relay: enabled, format text, keywords any body, 1 req/s (table 50), allow any, credential off`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nM78lgC59VT") {
		t.Errorf("check summary prints the credential:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`
tables:
  - id: t
    automations:
      - {id: a, token: abcdefghijklmnopqrstuvwxyz, keywords: [a,b,c,d,e,f,g,h,i,j,k]}
      - {id: b, token: short, format: xml}
`), 0o600)
	out, err = run(t, "check", "-config", bad)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check of a bad file: %v, want exit 1", err)
	}
	for _, want := range []string{
		"tables[0].automations[0].keywords: 11 keywords, at most 10",
		"tables[0].automations[1].token: is 5 characters",
		`tables[0].automations[1].format: "xml" is not one of json, text, none`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "abcdefghijklmnopqrstuvwxyz") {
		t.Errorf("check output quotes a token:\n%s", out)
	}
}

func TestCLITokenAndURLs(t *testing.T) {
	a, _ := run(t, "token")
	b, _ := run(t, "token")
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(a) || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
	out, err := run(t, "urls", "-config", "../../configs/hookgate.yaml")
	if err != nil || !strings.Contains(out, "tbl_menu/new_product\thttp://127.0.0.1:8080/webhook/flow/AcNFsIrrKZIaPoKM9OUNxOJdZzXLI4NBCJi_qz0jbLY") {
		t.Fatalf("urls: %v\n%s", err, out)
	}
}

// TestExampleCurlFires runs the curl that `make run` prints against the
// example configuration and finds the event in the file sink.
func TestExampleCurlFires(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	example, err := os.ReadFile("../../configs/hookgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := strings.Replace(string(example), "listen: 127.0.0.1:8080", "listen: LISTEN", 1)
	cfg = strings.Replace(cfg, "public_url: http://127.0.0.1:8080", "public_url: http://"+addr, 1)
	g := startGatewayAt(t, cfg, addr)
	out, err := run(t, "urls", "-curl", "-config", filepath.Join(g.dir, "hookgate.yaml"))
	if err != nil {
		t.Fatalf("urls -curl: %v\n%s", err, out)
	}
	fired := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		ans, err := exec.Command("sh", "-c", line).CombinedOutput()
		if err != nil || !strings.Contains(string(ans), `"triggered":true`) {
			t.Fatalf("%s\n-> %v %s", line, err, ans)
		}
		fired++
	}
	events, err := os.ReadFile(filepath.Join(g.dir, "data", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if fired != 2 || strings.Count(string(events), "\n") != 2 || !strings.Contains(string(events), `"robot_msgtype":"text"`) {
		t.Fatalf("fired %d, events file:\n%s", fired, events)
	}
}

// TestMalformedRequests: fasthttp's own errors get a JSON answer and a
// closed connection, and the gateway keeps serving.
func TestMalformedRequests(t *testing.T) {
	g, _ := rowsGateway(t)
	addr := strings.TrimPrefix(g.Base, "http://")
	for name, raw := range map[string]string{
		"garbage":            "\x16\x03\x01garbage\r\n\r\n",
		"huge header":        "POST /webhook/flow/x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 20000) + "\r\n\r\n",
		"bad content-length": "POST /webhook/flow/x HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte(raw))
			r := bufio.NewReader(c)
			status, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			rest, _ := io_ReadAll(r)
			if !strings.HasPrefix(status, "HTTP/1.1 404") || !strings.Contains(rest, `{"msg":"webhook not found","data":{},"code":800004404}`) {
				t.Fatalf("answer %q %q", status, rest)
			}
		})
	}
	post(t, "POST", g.url(tokAnon), productBody).want(t, 200, 0, "")
}

func io_ReadAll(r *bufio.Reader) (string, error) {
	var b strings.Builder
	_, err := r.WriteTo(&b)
	return b.String(), err
}

// TestSIGHUPReload: a valid file is swapped in (new token works, old one
// is gone); an invalid one is refused and the running config kept.
func TestSIGHUPReload(t *testing.T) {
	g, _ := rowsGateway(t)
	path := filepath.Join(g.dir, "hookgate.yaml")
	old, _ := os.ReadFile(path)
	const newTok = "tok-rotated-0123456789abcdef"
	os.WriteFile(path, []byte(strings.Replace(string(old), tokAnon, newTok, 1)), 0o600)
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return post(t, "POST", g.url(newTok), productBody).Code == 0 })
	post(t, "POST", g.url(tokAnon), productBody).want(t, 404, 800004404, "webhook not found")

	os.WriteFile(path, []byte("tables: [{id: t, automations: [{id: a, token: short}]}]"), 0o600)
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(g.log(), "reload refused") })
	post(t, "POST", g.url(newTok), productBody).want(t, 200, 0, "")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCLIRefusesStrayArguments: a file named without -config is not
// silently replaced by the default one — `check` said the default file
// was OK (exit 0) for a file it never read, and `serve` would have run
// the default configuration.
func TestCLIRefusesStrayArguments(t *testing.T) {
	// A directory holding the default configs/hookgate.yaml: the example,
	// on free addresses.
	dir := t.TempDir()
	example, err := os.ReadFile("../../configs/hookgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := strings.Replace(string(example), "listen: 127.0.0.1:8080", "listen: "+freeAddr(t), 1)
	def = strings.Replace(def, "admin_listen: 127.0.0.1:9090", "admin_listen: "+freeAddr(t), 1)
	os.Mkdir(filepath.Join(dir, "configs"), 0o700)
	if err := os.WriteFile(filepath.Join(dir, "configs", "hookgate.yaml"), []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "mine.yaml")
	for _, args := range [][]string{
		{"check", missing},
		{"check", "-config", "configs/hookgate.yaml", missing},
		{"urls", missing},
		{"serve", missing},
		{"sign", "-automation", "new_product", missing},
	} {
		t.Run(strings.Join(args[:1], " "), func(t *testing.T) {
			cmd := exec.Command(binary, args...)
			cmd.Dir = dir
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("%v kept running: %s", args, out)
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("%v: %v, want exit 2\n%s", args, err, out)
			}
			if !strings.Contains(string(out), `unexpected argument "`+missing+`"`) || !strings.Contains(string(out), "-config") {
				t.Fatalf("%v: output does not name the argument:\n%s", args, out)
			}
		})
	}
}

// TestURLsCurlQuotesForTheShell: the curl `hookgate urls -curl` prints
// for a credential holding quotes and shell syntax — any visible ASCII is
// a valid credential — runs as printed: the credential reaches the
// gateway whole and nothing of it is run by the shell.
func TestURLsCurlQuotesForTheShell(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	const cred = `x'$(touch${IFS}pwned)'"` + "`touch${IFS}pwned2`"
	g := startGateway(t, `listen: LISTEN
tables:
  - id: t
    automations:
      - {id: quoted, token: tok-quoted-0123456789abcdef, credential: '`+strings.ReplaceAll(cred, "'", "''")+`'}
`)
	out, err := run(t, "urls", "-curl", "-config", filepath.Join(g.dir, "hookgate.yaml"))
	if err != nil {
		t.Fatalf("urls -curl: %v\n%s", err, out)
	}
	line := strings.TrimSpace(strings.SplitN(out, "\n", 2)[1])
	sh := exec.Command("sh", "-c", line)
	sh.Dir = g.dir
	ans, err := sh.CombinedOutput()
	if err != nil || !strings.Contains(string(ans), `"triggered":true`) {
		t.Errorf("%s\n-> %v %s", line, err, ans)
	}
	for _, f := range []string{"pwned", "pwned2"} {
		if _, err := os.Stat(filepath.Join(g.dir, f)); err == nil {
			t.Errorf("the shell ran part of the credential (%s exists)", f)
		}
	}
}
