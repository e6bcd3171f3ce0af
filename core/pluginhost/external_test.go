package pluginhost_test

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/core/servertest"
)

// A plugin in its own Go module (sdk/examples/external, with a replace
// directive pointing at this checkout, as docs/plugins.md tells third
// parties) builds with the go tool and runs under the host.
func TestPluginInItsOwnModule(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		servertest.SkipOrFail(t, "building a plugin module needs the go tool: "+err.Error())
	}
	bin := filepath.Join(t.TempDir(), "external")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = "../../sdk/examples/external"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in its own module: %v\n%s", err, out)
	}
	e := start(t, fmt.Sprintf("plugins:\n  - id: ext\n    command: [%q]\n", bin)+testLimits)
	resp, err := http.Get(e.URL + "/plugins/ext/hi")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "hello from plugin ext, module example.com/unhidra-external, path /hi") {
		t.Fatalf("external plugin: %d %q", resp.StatusCode, b)
	}
}
