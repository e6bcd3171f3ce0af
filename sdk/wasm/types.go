// Package unhidra is the guest SDK for Unhidra WASM plugins (ABI v2). A
// module is a Go program built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// whose package main registers one plugin value:
//
//	type filter struct{}
//
//	func (filter) MessageWillBePosted(req *unhidra.MessageWillBePostedRequest) (*unhidra.MessageVerdict, error) {
//		if strings.Contains(req.Message.Text, "darn") {
//			return nil, unhidra.Reject("mind your language")
//		}
//		return unhidra.Allow(), nil
//	}
//
//	func init() { unhidra.Register(filter{}) }
//	func main() {}
//
// The plugin implements only the hook interfaces it needs (hooks.gen.go,
// generated from plugin.proto like the process SDK's: for every hook X an
// interface XHook with one method X); the SDK owns every export the host
// calls and tells the host which hooks exist, so the host never calls a hook
// the module lacks. Hook payloads are the proto messages in protojson
// (types.gen.go mirrors them with the standard library). The host API
// (host.go) is the only way out of the sandbox: no filesystem, no
// environment, no real sleep, no sockets.
//
// Rules for Go guests:
//   - No background goroutines between calls: the module runs only while the
//     host calls into it, so work started in a goroutine stalls until the next
//     call. Do all work inside the hook.
//   - Globals are per instance. The host runs several instances of a module
//     and recycles them; never rely on a global surviving between calls or
//     being shared. Use KV for state that must last.
//   - Every hook has a deadline. A module that runs past it is stopped and
//     its instance discarded.
//   - Memory is capped per instance; running out traps the call.
//
// This package uses only the standard library. docs/wasm-abi.md specifies
// the ABI for authors of other toolchains.
package unhidra

import "encoding/json"

// ABIVersion is the version of the exports and imports this SDK speaks
// (export unhidra_abi returns it). Version 2: every hook's input and answer
// is the protojson of its proto message.
const ABIVersion = 2

// Description is what the module tells the host at load (export
// unhidra_describe): its ABI version, hooks and slash commands.
type Description struct {
	ABI      int       `json:"abi"`
	Hooks    []string  `json:"hooks"`
	Commands []Command `json:"commands,omitempty"`
}

// Command is a slash command a module declares (CommandLister); the host
// registers it when the module has the commands grant.
type Command struct {
	Trigger     string `json:"trigger"` // without the slash
	Description string `json:"description,omitempty"`
	Hint        string `json:"hint,omitempty"`
}

// CommandLister is implemented by modules that declare slash commands; the
// host routes them to the module's ExecuteCommand.
type CommandLister interface {
	Commands() []Command
}

// HTTPRequest is an outbound request through the http capability.
type HTTPRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// HTTPResponse is its answer (body capped by the host).
type HTTPResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// KVEntry is one key/value (List returns them).
type KVEntry struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// CallResult is the envelope unhidra_call returns: either a result (the
// hook's answer, protojson) or an error string.
type CallResult struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}
