package api_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/core/api"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/protocol"
)

var routeParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestDocCoversRoutes fails when a route the real server registers (REST,
// WebSocket, health, metrics, JWKS) is not documented in docs/protocol.md as
// a section "#### `METHOD /path/{param}`", or when the documented status of an error code
// differs from StatusFor.
func TestDocCoversRoutes(t *testing.T) {
	b, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatalf("docs/protocol.md must exist: %v", err)
	}
	doc := string(b)
	env := servertest.Start(t, servertest.Options{})
	seen := map[string]bool{}
	for _, r := range env.Server.App().GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "CONNECT" || r.Method == "OPTIONS" || r.Method == "TRACE" {
			continue // fiber adds HEAD for every GET; the rest are not ours
		}
		route := r.Method + " " + routeParam.ReplaceAllString(r.Path, "{$1}")
		if seen[route] {
			continue
		}
		seen[route] = true
		want := "\n#### `" + route + "`\n" // each REST route has its own section
		if route == "GET /v1/ws" {
			want = "`" + route + "`" // the whole first half of the document
		}
		if !strings.Contains(doc, want) {
			t.Errorf("route %s is registered but docs/protocol.md has no %q", route, strings.TrimSpace(want))
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d routes found; is GetRoutes still listing the app's routes? %v", len(seen), seen)
	}
	for _, code := range protocol.Codes {
		row := fmt.Sprintf("| `%s` | %d |", code, api.StatusFor(code))
		if !strings.Contains(doc, row) {
			t.Errorf("error code %s answers HTTP %d but docs/protocol.md has no row %q", code, api.StatusFor(code), row)
		}
	}
}
