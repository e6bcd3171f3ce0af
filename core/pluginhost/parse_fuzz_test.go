package pluginhost

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// idOracle is the plugin id rule (protocol.ValidPluginID) written out
// independently.
var idOracle = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// FuzzParse checks the plugins.yaml parser: it never panics; a refusal
// names the file; an accepted file has unique valid ids, a known kind with
// what that kind needs, a JSON object as config, sorted known grants and
// positive limits; and parsing the same bytes again gives the same result.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"plugins: []\n",
		"plugins:\n  - id: hello\n    command: [./bin/hello, --verbose]\n    config: {word: darn, nested: {n: 1}}\n    grants: [kv, commands, kv]\n    tick: 30s\n" +
			"    limits:\n      timeouts: {MessageWillBePosted: 100ms, OnTick: 10s}\n    failure: {MessageWillBePosted: closed}\n" +
			"    breaker: {failures: 3, cooldown: 2s}\n    restart: {max_crashes: 4, window: 30s}\n",
		"plugins:\n  - id: echo\n    kind: wasm\n    wasm: echo.wasm\n    source: ../wasm/echo\n    grants: [http, messages.post]\n" +
			"    http_allow: [example.com]\n    http_allow_nets: [10.0.0.0/8]\n    post_rooms: [\"*\"]\n    limits: {memory_mb: 16, instances: 2, recycle_after: 100}\n",
		"plugins:\n  - id: w\n    builtin: welcome\n    enabled: false\n",
		"plugins:\n  - id: a\n    builtin: x\n  - id: a\n    builtin: y\n",
		"plugins:\n  - &p {id: a, builtin: x}\n  - *p\n",
		"plugins:\n  - id: a\n    builtin: x\n    config: {k: .nan, 1: two}\n",
		"plugins: {}\n", "", "plugin: []\n", "plugins:\n  - id: a\n    enabeld: true\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("p.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "p.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if file.Path != "p.yaml" {
			t.Fatalf("path %q", file.Path)
		}
		ids := map[string]bool{}
		for _, s := range file.Plugins {
			if !idOracle.MatchString(s.ID) || ids[s.ID] {
				t.Fatalf("accepted id %q (twice: %v)", s.ID, ids[s.ID])
			}
			ids[s.ID] = true
			switch s.Kind {
			case "process":
				if (s.Builtin == "") == (len(s.Command) == 0) || (len(s.Command) > 0 && s.Command[0] == "") {
					t.Fatalf("%s: process plugin with builtin %q and command %q", s.ID, s.Builtin, s.Command)
				}
			case "wasm":
				if s.WASM.Path == "" || s.Builtin != "" || len(s.Command) > 0 {
					t.Fatalf("%s: wasm plugin %+v", s.ID, s)
				}
			default:
				t.Fatalf("%s: kind %q", s.ID, s.Kind)
			}
			var cfg map[string]any
			if err := json.Unmarshal(s.Config, &cfg); err != nil || cfg == nil {
				t.Fatalf("%s: config %s is not a JSON object: %v", s.ID, s.Config, err)
			}
			if !slices.IsSorted(s.Grants) || len(slices.Compact(slices.Clone(s.Grants))) != len(s.Grants) {
				t.Fatalf("%s: grants %v", s.ID, s.Grants)
			}
			for _, g := range s.Grants {
				if !slices.Contains(knownGrants, g) {
					t.Fatalf("%s: unknown grant %q", s.ID, g)
				}
			}
			for h, d := range s.Timeouts {
				if d <= 0 {
					t.Fatalf("%s: timeout %v for %v", s.ID, d, h)
				}
			}
			if s.Line < 1 || s.Breaker.Failures <= 0 || s.Breaker.Cooldown <= 0 || s.Restart.MaxCrashes <= 0 || s.Restart.Window <= 0 || s.Tick < 0 {
				t.Fatalf("%s: limits %+v %+v line %d tick %v", s.ID, s.Breaker, s.Restart, s.Line, s.Tick)
			}
		}
		again, err := Parse("p.yaml", data)
		if err != nil || !reflect.DeepEqual(file, again) {
			t.Fatalf("a second parse differs: %v\n%+v\n%+v", err, file, again)
		}
	})
}
