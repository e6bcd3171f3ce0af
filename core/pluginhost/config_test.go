package pluginhost

import (
	"strings"
	"testing"
	"time"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

func TestParseValid(t *testing.T) {
	f, err := Parse("/etc/unhidra/plugins.yaml", []byte(`# comment
plugins:
  - id: hello
    command: [./bin/hello, --verbose]
    sha256: "`+strings.Repeat("ab", 32)+`"
    config: {word: darn, nested: {n: 1}}
    grants: [kv, commands, kv]
    tick: 30s
    limits:
      timeouts: {MessageWillBePosted: 100ms, OnTick: 10s}
    failure: {MessageWillBePosted: closed}
    breaker: {failures: 3, cooldown: 2s}
    restart: {max_crashes: 4, window: 30s}
  - id: welcome
    builtin: welcome
    enabled: false
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Plugins) != 2 {
		t.Fatalf("%d plugins", len(f.Plugins))
	}
	h := f.Plugins[0]
	if h.ID != "hello" || h.Line != 3 || h.Command[0] != "/etc/unhidra/bin/hello" || h.Command[1] != "--verbose" ||
		len(h.SHA256) != 32 || string(h.Config) != `{"nested":{"n":1},"word":"darn"}` ||
		strings.Join(h.Grants, ",") != "commands,kv" || h.Tick != 30*time.Second || !h.Enabled {
		t.Fatalf("hello = %+v", h)
	}
	if timeoutFor(&h, pb.Hook_HOOK_MESSAGE_WILL_BE_POSTED) != 100*time.Millisecond ||
		timeoutFor(&h, pb.Hook_HOOK_EXECUTE_COMMAND) != 5*time.Second ||
		timeoutFor(&h, pb.Hook_HOOK_MESSAGE_HAS_BEEN_POSTED) != 2*time.Second ||
		policyFor(&h, pb.Hook_HOOK_MESSAGE_WILL_BE_POSTED) != FailClosed ||
		policyFor(&h, pb.Hook_HOOK_USER_WILL_LOG_IN) != FailOpen ||
		h.Breaker != (BreakerSpec{3, 2 * time.Second}) || h.Restart != (RestartSpec{4, 30 * time.Second}) {
		t.Fatalf("limits = %+v", h)
	}
	w := f.Plugins[1]
	if w.Builtin != "welcome" || w.Enabled || w.Breaker.Failures != 5 || w.Restart.MaxCrashes != 5 {
		t.Fatalf("welcome = %+v", w)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"empty", ``, "p.yaml:1: empty file"},
		{"top key", "plugin: []\n", `p.yaml:1: top level: unknown key "plugin"`},
		{"not a list", "plugins: {}\n", "p.yaml:1: plugins must be a list"},
		{"unknown key", "plugins:\n  - id: a\n    command: x\n    enabeld: true\n", `p.yaml:4: plugin "a": unknown key "enabeld"`},
		{"no id", "plugins:\n  - command: x\n", `p.yaml:2: plugins[0]: missing required key "id"`},
		{"bad id", "plugins:\n  - id: Hello\n    command: x\n", `p.yaml:2: plugins[0].id "Hello"`},
		{"dup id", "plugins:\n  - id: a\n    command: x\n  - id: a\n    command: y\n", `p.yaml:4: plugin id "a" is used twice (first at line 2)`},
		{"neither", "plugins:\n  - id: a\n", "p.yaml:2: plugin \"a\": give exactly one of builtin"},
		{"both", "plugins:\n  - id: a\n    command: x\n    builtin: y\n", "p.yaml:2: plugin \"a\": give exactly one of builtin"},
		{"wasm with command", "plugins:\n  - id: a\n    kind: wasm\n    command: x\n", "p.yaml:2: plugin \"a\": kind wasm runs a module (wasm:), not builtin or command"},
		{"wasm without file", "plugins:\n  - id: a\n    kind: wasm\n", "p.yaml:2: plugin \"a\": kind wasm needs wasm:"},
		{"wasm key on process", "plugins:\n  - id: a\n    command: x\n    http_allow: [a.com]\n", "p.yaml:4: plugin \"a\": this key applies to kind: wasm only"},
		{"http_allow without grant", "plugins:\n  - id: a\n    kind: wasm\n    wasm: a.wasm\n    http_allow: [a.com]\n", "p.yaml:2: plugin \"a\": http_allow needs the http grant"},
		{"bad cidr", "plugins:\n  - id: a\n    kind: wasm\n    wasm: a.wasm\n    http_allow_nets: [nope]\n", "p.yaml:5: plugin \"a\".http_allow_nets: \"nope\" is not a CIDR"},
		{"kind", "plugins:\n  - id: a\n    kind: docker\n", `p.yaml:3: plugin "a": kind "docker"`},
		{"grant", "plugins:\n  - id: a\n    command: x\n    grants: [kv, root]\n", `p.yaml:4: plugin "a": unknown grant "root"`},
		{"hook", "plugins:\n  - id: a\n    command: x\n    failure: {MessageWillBePostd: closed}\n", `p.yaml:4: plugin "a".failure: unknown hook "MessageWillBePostd"`},
		{"policy", "plugins:\n  - id: a\n    command: x\n    failure: {MessageWillBePosted: shut}\n", `p.yaml:4: plugin "a".failure: "shut": want open or closed`},
		{"duration", "plugins:\n  - id: a\n    command: x\n    limits:\n      timeouts: {MessageWillBePosted: fast}\n", `p.yaml:5: plugin "a".limits.timeouts: "fast" is not a positive duration`},
		{"limits key", "plugins:\n  - id: a\n    command: x\n    limits: {memory: 1}\n", `p.yaml:4: plugin "a".limits: unknown key "memory"`},
		{"sha", "plugins:\n  - id: a\n    command: x\n    sha256: abc\n", `p.yaml:4: plugin "a".sha256 must be 64 hex digits`},
		{"sha builtin", "plugins:\n  - id: a\n    builtin: x\n    sha256: \"" + strings.Repeat("00", 32) + "\"\n", `sha256 applies to command`},
		{"config", "plugins:\n  - id: a\n    command: x\n    config: [1]\n", `p.yaml:4: plugin "a".config must be a mapping`},
		{"enabled", "plugins:\n  - id: a\n    command: x\n    enabled: maybe\n", `p.yaml:4: plugin "a".enabled must be true or false`},
		{"breaker", "plugins:\n  - id: a\n    command: x\n    breaker: {failures: -1}\n", `p.yaml:4: plugin "a".breaker.failures must be a positive integer`},
		{"tick timeout", "plugins:\n  - id: a\n    command: x\n    limits: {timeouts: {OnTick: 1s}}\n", `a timeout for OnTick needs tick:`},
		{"syntax", "plugins:\n  - id: [\n", "p.yaml: yaml:"},
		{"twice", "plugins:\n  - id: a\n    command: x\n    command: y\n", `p.yaml:4: plugin "a": key "command" appears twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestBreaker(t *testing.T) {
	var b breaker
	var states []int32
	b.onChange = func(s int32) { states = append(states, s) }
	for i := 0; i < 2; i++ {
		if !b.allow(time.Hour) {
			t.Fatal("closed breaker refused")
		}
		b.record(false, 3)
	}
	b.record(true, 3) // a success resets the count
	for i := 0; i < 3; i++ {
		b.record(false, 3)
	}
	if b.name() != "open" || b.allow(time.Hour) {
		t.Fatalf("after 3 consecutive failures: %s", b.name())
	}
	if !b.allow(0) || b.name() != "half-open" {
		t.Fatal("cooldown over: one trial call should pass")
	}
	if b.allow(0) {
		t.Fatal("a second concurrent trial passed")
	}
	b.record(false, 3)
	if b.name() != "open" {
		t.Fatal("failed trial should reopen")
	}
	b.allow(0)
	b.record(true, 3)
	if b.name() != "closed" {
		t.Fatal("successful trial should close")
	}
	want := []int32{breakerOpen, breakerHalfOpen, breakerOpen, breakerHalfOpen, breakerClosed}
	if len(states) != len(want) {
		t.Fatalf("transitions %v, want %v", states, want)
	}
}

func TestParseReattach(t *testing.T) {
	rc, err := ParseReattach(`{"hello": {"protocol":"grpc","network":"unix","addr":"/tmp/plugin1","pid":42}}`)
	if err != nil || rc["hello"] == nil || rc["hello"].Pid != 42 || rc["hello"].Addr.String() != "/tmp/plugin1" {
		t.Fatalf("rc = %+v, %v", rc, err)
	}
	for _, bad := range []string{`{"hello": 1}`, `{"hello": {"network":"carrier-pigeon","addr":"x"}}`, `[`} {
		if _, err := ParseReattach(bad); err == nil || !strings.Contains(err.Error(), "UNHIDRA_PLUGIN_REATTACH") {
			t.Errorf("ParseReattach(%s) = %v; want an error naming the variable", bad, err)
		}
	}
	if rc, err := ParseReattach(""); err != nil || rc != nil {
		t.Fatalf("empty: %v %v", rc, err)
	}
}
