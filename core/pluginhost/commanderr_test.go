package pluginhost_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// A command's own error reaches the sender with its text, from a process
// plugin and from a WASM module alike; a module that traps stays a generic
// "unavailable". Both runtimes enforce the same KV limits (keys ≤256 bytes,
// values ≤1 MiB, docs/plugins.md).
func TestCommandErrorsAndKVLimitsAgree(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		servertest.SkipOrFail(t, "building the docs test plugin needs the go tool: "+err.Error())
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "docsplugin")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/docsplugin").CombinedOutput(); err != nil {
		t.Fatalf("go build docsplugin: %v\n%s", err, out)
	}
	e := start(t, fmt.Sprintf(`plugins:
  - id: docsproc
    command: [%q]
    grants: [commands, kv]
    limits: {timeouts: {ExecuteCommand: 20s}}
  - id: docsmod
    kind: wasm
    wasm: %s/docsmodule.wasm
    source: %s
    grants: [commands, kv]
    limits: {timeouts: {ExecuteCommand: 20s}}
`, bin, dir, wasmSrc(t, "core/pluginhost/wasmhost/testdata/docsmodule")))

	for _, c := range []struct{ cmd, want string }{
		{"/pfail", "/pfail: usage: /pfail <text>"},
		{"/wfail", "/wfail: usage: /wfail <text>"},
	} {
		_, err := send(e.bc, e.room, c.cmd)
		if code(err) != protocol.CodeUnavailable || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want unavailable carrying %q", c.cmd, err, c.want)
		}
	}
	// A trap is the host's failure, not the module's answer: generic text.
	if _, err := send(e.bc, e.room, "/wtrap"); code(err) != protocol.CodeUnavailable ||
		!strings.Contains(err.Error(), "plugin docsmod is unavailable") {
		t.Errorf("/wtrap: %v; want the generic unavailable", err)
	}
	// The module still answers (a fresh instance replaced the trapped one).
	if ack, err := send(e.bc, e.room, "/wfail fine"); err != nil || ack.Text == nil || *ack.Text != "fine" {
		t.Errorf("/wfail fine after a trap: %+v %v", ack, err)
	}

	want := map[string]string{"key256": "ok", "key257": "256", "value1MiB": "ok", "value1MiB+1": "1048576"}
	for _, cmd := range []string{"/pkvlimits", "/wkvlimits"} {
		ack, err := send(e.bc, e.room, cmd)
		if err != nil || ack.Text == nil {
			t.Fatalf("%s: %+v %v", cmd, ack, err)
		}
		got := map[string]string{}
		for _, line := range strings.Split(*ack.Text, "\n") {
			k, v, _ := strings.Cut(line, "=")
			got[k] = v
		}
		for k, w := range want {
			switch v := got[k]; {
			case w == "ok" && v != "ok":
				t.Errorf("%s %s: %q, want ok", cmd, k, v)
			case w != "ok" && (!strings.HasPrefix(v, "error: ") || !strings.Contains(v, w)):
				t.Errorf("%s %s: %q, want an error naming the limit %s", cmd, k, v, w)
			}
		}
	}
	alive(t, e.ac, e.bc)
}
