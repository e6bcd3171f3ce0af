// Package plugin is the Go SDK for Unhidra process plugins.
//
// A plugin is a value whose methods implement some of the hook interfaces
// (hooks.gen.go, generated from sdk/proto/pluginv1/plugin.proto: for every
// hook X an interface XHook with one method X); main calls Serve with it.
// The host asks the plugin which hooks it implements when it starts and
// never calls the others, so a plugin pays for exactly what it uses:
//
//	type hello struct{}
//
//	func (hello) MessageWillBePosted(ctx context.Context, req *plugin.MessageWillBePostedRequest) (*plugin.MessageVerdict, error) {
//		if strings.Contains(req.Message.GetText(), "darn") {
//			return nil, plugin.Reject("mind your language")
//		}
//		return plugin.Allow(), nil
//	}
//
//	func main() { plugin.Serve(hello{}) }
//
// The messages are the contract's own (types.gen.go aliases them), and *Host
// has one method per host call (host.gen.go). A plugin that implements
// net/http.Handler serves requests under /plugins/{id}/ (r.URL.Path is the
// part after the id; bodies stream both ways, http.Flusher pushes what was
// written so far). What each hook means, its default deadline and what
// happens when it fails is declared in plugin.proto; docs/plugins.md is the
// tutorial.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// hookEntry is one row of the generated hookTable: whether a plugin
// implements the hook, and how to call it (nil for OnActivate and ServeHTTP,
// which the server serves itself).
type hookEntry struct {
	hook       pb.Hook
	implements func(p any) bool
	call       func(ctx context.Context, p any, req proto.Message) (proto.Message, error)
}

// Rejection is the error a verdict hook returns to refuse an action; the
// SDK answers REJECT with Reason, which the user is shown.
type Rejection struct{ Reason string }

func (r *Rejection) Error() string { return "rejected: " + r.Reason }

// Reject returns a *Rejection with a formatted reason. Returned as a verdict
// hook's error it becomes a REJECT verdict; from any other hook it is an
// error carrying the reason.
func Reject(format string, args ...any) error {
	return &Rejection{Reason: fmt.Sprintf(format, args...)}
}

// Allow is the verdict that lets the action proceed unchanged (a nil verdict
// with a nil error means the same).
func Allow() *MessageVerdict { return &MessageVerdict{Action: Action_ACTION_ALLOW} }

// Modify is the verdict that replaces the message's text.
func Modify(text string) *MessageVerdict {
	return &MessageVerdict{Action: Action_ACTION_MODIFY, Text: text}
}

// Config is a plugin's `config:` from plugins.yaml, as JSON.
type Config json.RawMessage

// Decode decodes the config into v strictly: a key v does not declare is an
// error, so a typo in plugins.yaml fails the plugin's start instead of being
// silently ignored.
func (c Config) Decode(v any) error {
	if len(c) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytesReader(c))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("plugin config: %w", err)
	}
	return nil
}

// Errors the host API returns (test with errors.Is).
var (
	// ErrPermissionDenied: the call is outside the plugin's grants.
	ErrPermissionDenied = errors.New("permission denied by plugin grants")
	// ErrNotFound: the user, room or key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: e.g. a command trigger another plugin registered.
	ErrExists = errors.New("already exists")
)
