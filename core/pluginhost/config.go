package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// File is a parsed, validated plugins.yaml. docs/plugins-yaml.md is its
// schema in prose.
type File struct {
	Path    string
	Plugins []Spec // in file order, which is hook order
}

// Spec is one plugin entry.
type Spec struct {
	ID      string
	Line    int
	Kind    string   // "process" or "wasm"
	Builtin string   // first-party: run `<unhidra> plugin <Builtin>`
	Command []string // third-party executable and arguments (path resolved)
	SHA256  []byte   // expected checksum of Command[0], or nil
	Enabled bool
	Config  json.RawMessage // the config mapping as a JSON object
	Grants  []string        // sorted
	Tick    time.Duration
	// Timeouts and Failure are per hook; missing hooks use the defaults.
	Timeouts map[pb.Hook]time.Duration
	Failure  map[pb.Hook]Policy
	Breaker  BreakerSpec
	Restart  RestartSpec
	// WASM holds the kind: wasm settings.
	WASM WASMSpec
}

// WASMSpec is what a kind: wasm plugin adds (docs/plugins-yaml.md).
type WASMSpec struct {
	// Path is the .wasm file (anchored at plugins.yaml's folder).
	Path string
	// Source is a Go guest folder; the host builds Path from it when Path is
	// missing or older than the sources and `go` is on PATH.
	Source string
	// MemoryMB caps each instance's memory (default 64).
	MemoryMB int
	// Instances bounds the instance pool (default 4).
	Instances int
	// RecycleAfter discards an instance after this many calls (default 10000).
	RecycleAfter int
	// HTTPAllow lists the hosts the http grant may reach.
	HTTPAllow []string
	// HTTPAllowNets opens specific internal networks to HTTP (refused by default).
	HTTPAllowNets []netip.Prefix
	// PostRooms lists the rooms messages.post may post to ("*": any).
	PostRooms []string
}

// Policy is what happens when a hook fails: open lets the event through as
// if the plugin had allowed it, closed refuses it.
type Policy string

// Failure policies.
const (
	FailOpen   Policy = "open"
	FailClosed Policy = "closed"
)

// BreakerSpec configures the circuit breaker of each hook of a plugin.
type BreakerSpec struct {
	Failures int           // consecutive failures that open it (default 5)
	Cooldown time.Duration // how long it stays open before a trial call (default 5s)
}

// RestartSpec configures crash handling.
type RestartSpec struct {
	MaxCrashes int           // crashes within Window that disable the plugin (default 5)
	Window     time.Duration // default 1m
}

// knownGrants are the grants a plugin can hold: those plugin.proto declares
// on host calls and hooks, plus "http" (outbound HTTP from a WASM module).
var knownGrants = append(pb.Grants(), "http")

// hookNames maps the names plugins.yaml uses (the contract's rpc names) to
// hooks, from plugin.proto.
var hookNames = func() map[string]pb.Hook {
	out := map[string]pb.Hook{}
	for _, s := range pb.Hooks() {
		out[s.Name] = s.Hook
	}
	return out
}()

// HookName is the contract name of h ("MessageWillBePosted").
func HookName(h pb.Hook) string {
	if s, ok := pb.HookSpecOf(h); ok {
		return s.Name
	}
	return h.String()
}

// timeoutFor is h's deadline: plugins.yaml's, else the one plugin.proto
// declares (OnTick: the tick interval, at most a minute).
func timeoutFor(s *Spec, h pb.Hook) time.Duration {
	if d, ok := s.Timeouts[h]; ok {
		return d
	}
	if h == pb.Hook_HOOK_ON_TICK {
		return min(s.Tick, time.Minute)
	}
	if hs, ok := pb.HookSpecOf(h); ok && hs.Deadline > 0 {
		return hs.Deadline
	}
	return 2 * time.Second
}

// policyFor is h's failure policy: plugins.yaml's, else plugin.proto's.
func policyFor(s *Spec, h pb.Hook) Policy {
	if p, ok := s.Failure[h]; ok {
		return p
	}
	if hs, ok := pb.HookSpecOf(h); ok && hs.Policy == pb.FailurePolicy_FAILURE_POLICY_CLOSED {
		return FailClosed
	}
	return FailOpen
}

// LoadFile reads and validates path. Every error names the file and line.
func LoadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plugins file: %w", err)
	}
	return Parse(path, b)
}

// Parse validates data as plugins.yaml; path names it in errors and anchors
// relative command paths.
func Parse(path string, data []byte) (*File, error) {
	p := &parser{path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &File{Path: path}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s:1: empty file; write `plugins: []` for no plugins", path)
	}
	root := doc.Content[0]
	if err := p.mapping(root, "top level", map[string]func(*yaml.Node) error{
		"plugins": func(n *yaml.Node) error {
			if n.Kind != yaml.SequenceNode {
				return p.errf(n, "plugins must be a list")
			}
			for i, item := range n.Content {
				s, err := p.plugin(item, i)
				if err != nil {
					return err
				}
				for _, o := range f.Plugins {
					if o.ID == s.ID {
						return p.errf(item, "plugin id %q is used twice (first at line %d)", s.ID, o.Line)
					}
				}
				f.Plugins = append(f.Plugins, *s)
			}
			return nil
		},
	}, "plugins"); err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct{ path string }

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.path, n.Line, fmt.Sprintf(format, args...))
}

// mapping walks a mapping node strictly: unknown keys and missing required
// keys are errors.
func (p *parser) mapping(n *yaml.Node, what string, fields map[string]func(*yaml.Node) error, required ...string) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "%s must be a mapping", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fn, ok := fields[k.Value]
		if !ok {
			return p.errf(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
		}
		if seen[k.Value] {
			return p.errf(k, "%s: key %q appears twice", what, k.Value)
		}
		seen[k.Value] = true
		if err := fn(v); err != nil {
			return err
		}
	}
	for _, r := range required {
		if !seen[r] {
			return p.errf(n, "%s: missing required key %q", what, r)
		}
	}
	return nil
}

func (p *parser) str(n *yaml.Node, what string, out *string) error {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return p.errf(n, "%s must be a string", what)
	}
	*out = n.Value
	return nil
}

func (p *parser) duration(n *yaml.Node, what string, out *time.Duration) error {
	var s string
	if err := p.str(n, what, &s); err != nil {
		return err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return p.errf(n, "%s: %q is not a positive duration like 250ms or 5s", what, s)
	}
	*out = d
	return nil
}

func (p *parser) integer(n *yaml.Node, what string, out *int) error {
	var v int
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil || v <= 0 {
		return p.errf(n, "%s must be a positive integer", what)
	}
	*out = v
	return nil
}

func (p *parser) plugin(n *yaml.Node, i int) (*Spec, error) {
	s := &Spec{Line: n.Line, Kind: "process", Enabled: true, Config: json.RawMessage("{}"),
		Timeouts: map[pb.Hook]time.Duration{}, Failure: map[pb.Hook]Policy{},
		Breaker: BreakerSpec{Failures: 5, Cooldown: 5 * time.Second}, Restart: RestartSpec{MaxCrashes: 5, Window: time.Minute}}
	what := fmt.Sprintf("plugins[%d]", i)
	if n.Kind == yaml.MappingNode { // name the plugin in every error, whatever the key order
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k, v := n.Content[j], n.Content[j+1]; k.Value == "id" && v.Kind == yaml.ScalarNode && protocol.ValidPluginID(v.Value) {
				what = fmt.Sprintf("plugin %q", v.Value)
			}
		}
	}
	var sum string
	var sumNode *yaml.Node
	var wasmKeys []*yaml.Node // keys that only kind: wasm may use
	err := p.mapping(n, what, map[string]func(*yaml.Node) error{
		"id": func(v *yaml.Node) error {
			if err := p.str(v, what+".id", &s.ID); err != nil {
				return err
			}
			if !protocol.ValidPluginID(s.ID) {
				return p.errf(v, "%s.id %q: use 1–32 of a-z, 0-9 and '-', starting with a letter", what, s.ID)
			}
			return nil
		},
		"kind": func(v *yaml.Node) error {
			if err := p.str(v, what+".kind", &s.Kind); err != nil {
				return err
			}
			if _, ok := runtimes[s.Kind]; ok {
				return nil
			}
			return p.errf(v, "%s: kind %q: want one of %s", what, s.Kind, strings.Join(slices.Sorted(maps.Keys(runtimes)), ", "))
		},
		"builtin": func(v *yaml.Node) error { return p.str(v, what+".builtin", &s.Builtin) },
		"wasm":    func(v *yaml.Node) error { wasmKeys = append(wasmKeys, v); return p.str(v, what+".wasm", &s.WASM.Path) },
		"source": func(v *yaml.Node) error {
			wasmKeys = append(wasmKeys, v)
			return p.str(v, what+".source", &s.WASM.Source)
		},
		"http_allow": func(v *yaml.Node) error {
			wasmKeys = append(wasmKeys, v)
			return p.strList(v, what+".http_allow", &s.WASM.HTTPAllow)
		},
		"http_allow_nets": func(v *yaml.Node) error {
			wasmKeys = append(wasmKeys, v)
			var nets []string
			if err := p.strList(v, what+".http_allow_nets", &nets); err != nil {
				return err
			}
			for i, n := range nets {
				pf, err := netip.ParsePrefix(n)
				if err != nil {
					return p.errf(v.Content[i], "%s.http_allow_nets: %q is not a CIDR prefix like 10.1.2.0/24", what, n)
				}
				s.WASM.HTTPAllowNets = append(s.WASM.HTTPAllowNets, pf.Masked())
			}
			return nil
		},
		"post_rooms": func(v *yaml.Node) error {
			wasmKeys = append(wasmKeys, v)
			return p.strList(v, what+".post_rooms", &s.WASM.PostRooms)
		},
		"command": func(v *yaml.Node) error {
			if v.Kind == yaml.ScalarNode {
				s.Command = []string{v.Value}
			} else if v.Kind != yaml.SequenceNode || v.Decode(&s.Command) != nil {
				return p.errf(v, "%s.command must be a path or a list [path, args…]", what)
			}
			if len(s.Command) == 0 || s.Command[0] == "" {
				return p.errf(v, "%s.command is empty", what)
			}
			return nil
		},
		"sha256": func(v *yaml.Node) error {
			sumNode = v
			return p.str(v, what+".sha256", &sum)
		},
		"enabled": func(v *yaml.Node) error {
			if v.Kind != yaml.ScalarNode || v.Decode(&s.Enabled) != nil {
				return p.errf(v, "%s.enabled must be true or false", what)
			}
			return nil
		},
		"config": func(v *yaml.Node) error {
			if v.Kind != yaml.MappingNode {
				return p.errf(v, "%s.config must be a mapping", what)
			}
			var m map[string]any
			if err := v.Decode(&m); err != nil {
				return p.errf(v, "%s.config: %v", what, err)
			}
			b, err := json.Marshal(m)
			if err != nil {
				return p.errf(v, "%s.config cannot be expressed as JSON: %v", what, err)
			}
			s.Config = b
			return nil
		},
		"grants": func(v *yaml.Node) error {
			if v.Kind != yaml.SequenceNode {
				return p.errf(v, "%s.grants must be a list", what)
			}
			for _, g := range v.Content {
				var name string
				if err := p.str(g, what+".grants[]", &name); err != nil {
					return err
				}
				if !slices.Contains(knownGrants, name) {
					return p.errf(g, "%s: unknown grant %q (known: %s)", what, name, strings.Join(knownGrants, ", "))
				}
				if !slices.Contains(s.Grants, name) {
					s.Grants = append(s.Grants, name)
				}
			}
			slices.Sort(s.Grants)
			return nil
		},
		"tick": func(v *yaml.Node) error { return p.duration(v, what+".tick", &s.Tick) },
		"limits": func(v *yaml.Node) error {
			return p.mapping(v, what+".limits", map[string]func(*yaml.Node) error{
				"memory_mb": func(v *yaml.Node) error {
					wasmKeys = append(wasmKeys, v)
					if err := p.integer(v, what+".limits.memory_mb", &s.WASM.MemoryMB); err != nil {
						return err
					}
					if s.WASM.MemoryMB > 4096 {
						return p.errf(v, "%s.limits.memory_mb %d: at most 4096", what, s.WASM.MemoryMB)
					}
					return nil
				},
				"instances": func(v *yaml.Node) error {
					wasmKeys = append(wasmKeys, v)
					return p.integer(v, what+".limits.instances", &s.WASM.Instances)
				},
				"recycle_after": func(v *yaml.Node) error {
					wasmKeys = append(wasmKeys, v)
					return p.integer(v, what+".limits.recycle_after", &s.WASM.RecycleAfter)
				},
				"timeouts": func(v *yaml.Node) error {
					return p.perHook(v, what+".limits.timeouts", func(h pb.Hook, n *yaml.Node) error {
						var d time.Duration
						if err := p.duration(n, what+".limits.timeouts", &d); err != nil {
							return err
						}
						s.Timeouts[h] = d
						return nil
					})
				},
			})
		},
		"failure": func(v *yaml.Node) error {
			return p.perHook(v, what+".failure", func(h pb.Hook, n *yaml.Node) error {
				var pol string
				if err := p.str(n, what+".failure", &pol); err != nil {
					return err
				}
				if pol != string(FailOpen) && pol != string(FailClosed) {
					return p.errf(n, "%s.failure: %q: want open or closed", what, pol)
				}
				s.Failure[h] = Policy(pol)
				return nil
			})
		},
		"breaker": func(v *yaml.Node) error {
			return p.mapping(v, what+".breaker", map[string]func(*yaml.Node) error{
				"failures": func(v *yaml.Node) error { return p.integer(v, what+".breaker.failures", &s.Breaker.Failures) },
				"cooldown": func(v *yaml.Node) error { return p.duration(v, what+".breaker.cooldown", &s.Breaker.Cooldown) },
			})
		},
		"restart": func(v *yaml.Node) error {
			return p.mapping(v, what+".restart", map[string]func(*yaml.Node) error{
				"max_crashes": func(v *yaml.Node) error { return p.integer(v, what+".restart.max_crashes", &s.Restart.MaxCrashes) },
				"window":      func(v *yaml.Node) error { return p.duration(v, what+".restart.window", &s.Restart.Window) },
			})
		},
	}, "id")
	if err != nil {
		return nil, err
	}
	if err := runtimes[s.Kind].check(p, n, s, what, wasmKeys); err != nil {
		return nil, err
	}
	if len(s.Command) > 0 {
		c := s.Command[0]
		if !filepath.IsAbs(c) && strings.ContainsRune(c, filepath.Separator) {
			s.Command[0] = filepath.Join(filepath.Dir(p.path), c)
		}
	}
	if sum != "" {
		b, err := hex.DecodeString(sum)
		if err != nil || len(b) != sha256.Size {
			return nil, p.errf(sumNode, "%s.sha256 must be 64 hex digits", what)
		}
		if s.Builtin != "" {
			return nil, p.errf(sumNode, "%s: sha256 applies to command or wasm, not builtin", what)
		}
		s.SHA256 = b
	}
	if _, ok := s.Timeouts[pb.Hook_HOOK_ON_TICK]; ok && s.Tick == 0 {
		return nil, p.errf(n, "%s: a timeout for OnTick needs tick:", what)
	}
	return s, nil
}

// perHook walks a mapping from hook names to values.
func (p *parser) perHook(n *yaml.Node, what string, fn func(pb.Hook, *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "%s must be a mapping of hook name to value", what)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := hookNames[k.Value]
		if !ok {
			return p.errf(k, "%s: unknown hook %q (hooks: %s)", what, k.Value, strings.Join(slices.Sorted(maps.Keys(hookNames)), ", "))
		}
		if err := fn(h, v); err != nil {
			return err
		}
	}
	return nil
}

// sameProcess reports whether a and b run the same program the same way, so
// a reload need not restart it.
func sameProcess(a, b *Spec) bool {
	return a.Kind == b.Kind && runtimes[a.Kind].same(a, b)
}

// anchor makes a relative path relative to plugins.yaml's folder.
func (p *parser) anchor(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(p.path), path)
}

// strList decodes a list of strings.
func (p *parser) strList(n *yaml.Node, what string, out *[]string) error {
	if n.Kind != yaml.SequenceNode {
		return p.errf(n, "%s must be a list", what)
	}
	for _, c := range n.Content {
		var v string
		if err := p.str(c, what+"[]", &v); err != nil {
			return err
		}
		*out = append(*out, v)
	}
	return nil
}
