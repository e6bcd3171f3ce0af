package pluginhost

import (
	"context"
	"os/exec"
	"slices"

	"gopkg.in/yaml.v3"
)

// runtime runs one kind of plugin (plugins.yaml `kind:`). The host knows
// kinds only through this interface: a new kind is one more entry in
// runtimes, not a comparison in every file.
type runtime interface {
	// check validates the kind's own settings of a parsed spec; kindKeys
	// are the keys only some kinds accept (wasm:, source:, …), n the spec.
	check(p *parser, n *yaml.Node, s *Spec, what string, kindKeys []*yaml.Node) error
	// start starts one instance of m's current spec.
	start(ctx context.Context, m *managed) (*instance, error)
	// same reports whether a and b run the same program the same way, so
	// that a reload need not swap the instance.
	same(a, b *Spec) bool
	// program is the file whose replacement on disk is an upgrade ("" when
	// none is watched).
	program(s *Spec) string
}

var runtimes = map[string]runtime{"process": processRuntime{}, "wasm": wasmRuntime{}}

// processRuntime runs executables through hashicorp/go-plugin (process.go).
type processRuntime struct{}

func (processRuntime) check(p *parser, n *yaml.Node, s *Spec, what string, kindKeys []*yaml.Node) error {
	if len(kindKeys) > 0 {
		return p.errf(kindKeys[0], "%s: this key applies to kind: wasm only", what)
	}
	if (s.Builtin == "") == (len(s.Command) == 0) {
		return p.errf(n, "%s: give exactly one of builtin (a first-party plugin) or command (an executable)", what)
	}
	return nil
}

func (processRuntime) start(ctx context.Context, m *managed) (*instance, error) {
	return m.startProcess(ctx)
}

func (processRuntime) same(a, b *Spec) bool {
	return a.Builtin == b.Builtin && slices.Equal(a.Command, b.Command) && string(a.SHA256) == string(b.SHA256)
}

func (processRuntime) program(s *Spec) string {
	if len(s.Command) == 0 {
		return ""
	}
	path, err := exec.LookPath(s.Command[0])
	if err != nil {
		return ""
	}
	return path
}

// wasmRuntime runs WASM modules in process with wazero (wasm.go).
type wasmRuntime struct{}

func (wasmRuntime) check(p *parser, n *yaml.Node, s *Spec, what string, _ []*yaml.Node) error {
	if s.Builtin != "" || len(s.Command) > 0 {
		return p.errf(n, "%s: kind wasm runs a module (wasm:), not builtin or command", what)
	}
	if s.WASM.Path == "" {
		return p.errf(n, "%s: kind wasm needs wasm: (the .wasm file; add source: to build it from Go)", what)
	}
	s.WASM.Path = p.anchor(s.WASM.Path)
	if s.WASM.Source != "" {
		s.WASM.Source = p.anchor(s.WASM.Source)
	}
	if len(s.WASM.HTTPAllow) > 0 && !slices.Contains(s.Grants, "http") {
		return p.errf(n, "%s: http_allow needs the http grant", what)
	}
	if len(s.WASM.PostRooms) > 0 && !slices.Contains(s.Grants, "messages.post") {
		return p.errf(n, "%s: post_rooms needs the messages.post grant", what)
	}
	return nil
}

func (wasmRuntime) start(ctx context.Context, m *managed) (*instance, error) { return m.startWasm(ctx) }

// same: a module's settings are fixed at load, so any change means a swap.
func (wasmRuntime) same(a, b *Spec) bool {
	return string(a.SHA256) == string(b.SHA256) && string(a.Config) == string(b.Config) &&
		a.WASM.Path == b.WASM.Path && a.WASM.Source == b.WASM.Source && a.WASM.MemoryMB == b.WASM.MemoryMB &&
		a.WASM.Instances == b.WASM.Instances && a.WASM.RecycleAfter == b.WASM.RecycleAfter &&
		slices.Equal(a.WASM.HTTPAllow, b.WASM.HTTPAllow) && slices.Equal(a.WASM.HTTPAllowNets, b.WASM.HTTPAllowNets) &&
		slices.Equal(a.WASM.PostRooms, b.WASM.PostRooms) && slices.Equal(a.Grants, b.Grants)
}

func (wasmRuntime) program(s *Spec) string { return s.WASM.Path }
