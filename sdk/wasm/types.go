// Package unhidra is the guest SDK for Unhidra WASM plugins (ABI v1). A
// module is a Go program built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// whose package main registers one plugin value:
//
//	func init() { unhidra.Register(&Filter{}) }
//	func main() {}
//
// The plugin implements only the hook interfaces it needs (hooks.go); the
// SDK owns every export the host calls and tells the host which hooks exist,
// so the host never calls a hook the module lacks. The host API (host.go) is
// the only way out of the sandbox: no filesystem, no environment, no real
// sleep, no sockets.
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

// ABIVersion is the version of the exports and imports this SDK speaks.
const ABIVersion = 1

// Hook names, the same as for process plugins.
const (
	HookOnActivate            = "OnActivate"
	HookOnDeactivate          = "OnDeactivate"
	HookOnConfigurationChange = "OnConfigurationChange"
	HookMessageWillBePosted   = "MessageWillBePosted"
	HookMessageHasBeenPosted  = "MessageHasBeenPosted"
	HookMessageWillBeUpdated  = "MessageWillBeUpdated"
	HookMessageHasBeenUpdated = "MessageHasBeenUpdated"
	HookMessageHasBeenDeleted = "MessageHasBeenDeleted"
	HookUserWillLogIn         = "UserWillLogIn"
	HookUserHasLoggedIn       = "UserHasLoggedIn"
	HookUserHasJoinedRoom     = "UserHasJoinedRoom"
	HookUserHasLeftRoom       = "UserHasLeftRoom"
	HookOnWebSocketConnect    = "OnWebSocketConnect"
	HookOnWebSocketDisconnect = "OnWebSocketDisconnect"
	HookExecuteCommand        = "ExecuteCommand"
	HookOnTick                = "OnTick"
)

// Description is what the module tells the host at load (export
// unhidra_describe): its ABI version, hooks and slash commands.
type Description struct {
	ABI      int       `json:"abi"`
	Hooks    []string  `json:"hooks"`
	Commands []Command `json:"commands,omitempty"`
}

// Command is a slash command a module registers.
type Command struct {
	Trigger     string `json:"trigger"` // without the slash
	Description string `json:"description,omitempty"`
	Hint        string `json:"hint,omitempty"`
}

// Post is a message as hooks see it.
type Post struct {
	ID     string          `json:"id,omitempty"`
	Room   string          `json:"room"`
	Sender string          `json:"sender"`
	Text   string          `json:"text"`
	Thread string          `json:"thread,omitempty"`
	Meta   json.RawMessage `json:"meta,omitempty"`
	Seq    int64           `json:"seq,omitempty"`
	TS     int64           `json:"ts,omitempty"`
}

// PostDecision is MessageWillBePosted's answer: allow unchanged (zero
// value), allow with a changed Post, or reject with a reason the sender sees.
type PostDecision struct {
	Post   *Post  `json:"post,omitempty"`
	Reject string `json:"reject,omitempty"`
}

// Membership is the payload of UserHasJoinedRoom / UserHasLeftRoom: who
// entered or left which room, who made the change (the user themselves, an
// admin's user id, or "plugin:<id>"), why (a MembershipReason name such as
// "MEMBERSHIP_REASON_ADDED") and, on joining, the member's role.
type Membership struct {
	Room   string `json:"room"`
	User   string `json:"user"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
	Role   string `json:"role,omitempty"`
}

// UserEvent is the payload of UserWillLogIn / UserHasLoggedIn.
type UserEvent struct {
	User     string `json:"user"`
	Username string `json:"username"`
	Device   string `json:"device,omitempty"`
}

// LoginDecision is UserWillLogIn's answer: zero allows, Reject refuses the
// login with a reason.
type LoginDecision struct {
	Reject string `json:"reject,omitempty"`
}

// ConnectionEvent is the payload of OnWebSocketConnect / OnWebSocketDisconnect.
type ConnectionEvent struct {
	User    string `json:"user"`
	Session uint64 `json:"session"`
}

// CommandArgs is one invocation of a registered slash command.
type CommandArgs struct {
	Command string   `json:"command"` // trigger without the slash
	Args    []string `json:"args"`
	Raw     string   `json:"raw"` // the whole text
	Room    string   `json:"room"`
	User    string   `json:"user"`
}

// CommandResponse answers a command: Text goes to the sender only
// (ephemeral) unless InRoom is true, when it is posted to the room as the
// module's bot.
type CommandResponse struct {
	Text   string `json:"text"`
	InRoom bool   `json:"in_room,omitempty"`
}

// Tick is the payload of OnTick.
type Tick struct {
	Now int64 `json:"now"` // unix milliseconds
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
// hook's JSON answer) or an error string.
type CallResult struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}
