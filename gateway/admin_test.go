package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestAdminReloadNamesItsGeneration: POST /reload answers with the
// generation its own reload made, or kept when refused, even when another
// reload (SIGHUP, the file watcher) has swapped in a later one before the
// answer is written.
func TestAdminReloadNamesItsGeneration(t *testing.T) {
	g, _, _ := testGateway(t)
	path := filepath.Join(t.TempDir(), "hookgate.yaml")
	write := func(content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Each reload is followed by another, as a watcher's may be.
	a := g.NewAdmin("", path, func() (uint64, []string, error) {
		gen, pending, err := g.ReloadFile(path)
		_, _, _ = g.ReloadFile(path) // another reload, before the answer
		return gen, pending, err
	})
	post := func() (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/reload")
		a.Handle(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}

	write(handlerConfig)
	status, body := post()
	if status != 200 || !strings.HasPrefix(body, "reloaded: generation 2\n") {
		t.Fatalf("POST /reload: %d %q; want 200 naming generation 2 (the one after it is %d)", status, body, g.Generation())
	}
	write("tables: [")
	status, body = post()
	if status != 422 || !strings.HasPrefix(body, "reload refused; generation 3 keeps serving:") {
		t.Fatalf("refused POST /reload: %d %q; want 422 naming generation 3", status, body)
	}
	if g.Generation() != 3 {
		t.Fatalf("generation %d after two good reloads and two refused, want 3", g.Generation())
	}
}
