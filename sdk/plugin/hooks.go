// Package plugin is the Go SDK for Unhidra process plugins.
//
// A plugin is a value whose methods implement some of the hook interfaces
// below; main calls Serve with it. The host asks the plugin which hooks it
// implements when it starts and never calls the others, so a plugin pays for
// exactly what it uses:
//
//	type hello struct{}
//
//	func (hello) MessageWillBePosted(ctx context.Context, m *plugin.Message) error {
//		if strings.Contains(m.Text, "darn") {
//			return plugin.Reject("mind your language")
//		}
//		return nil
//	}
//
//	func main() { plugin.Serve(hello{}) }
//
// The contract itself (what each hook means, its default deadline and what
// happens when it fails) is declared in sdk/proto/pluginv1/plugin.proto;
// docs/plugins.md is the tutorial.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Activator is implemented by plugins that need setup. OnActivate runs once
// per process start, before any other hook; host is the plugin's handle on
// the host API and stays valid until the process exits. An error fails the
// start (the host retries with backoff). Default deadline 10s.
type Activator interface {
	OnActivate(ctx context.Context, host *Host) error
}

// Deactivator is implemented by plugins that clean up before they are
// stopped (disabled, upgraded, or the server is shutting down). Deadline 5s.
type Deactivator interface {
	OnDeactivate(ctx context.Context) error
}

// ConfigurationChanger is implemented by plugins that react to a reload that
// changed their `config:`. Without it the host restarts the plugin to apply
// a new config. Deadline 5s.
type ConfigurationChanger interface {
	OnConfigurationChange(ctx context.Context, cfg Config) error
}

// MessageWillBePostedHook runs before a message is stored. Change m.Text or
// m.Meta to modify the message; return Reject(reason) to refuse it (the
// sender sees reason); any other error is a plugin failure and follows the
// hook's failure policy. Default deadline 250ms: keep it fast.
type MessageWillBePostedHook interface {
	MessageWillBePosted(ctx context.Context, m *Message) error
}

// MessageHasBeenPostedHook runs after a message is durable and delivered.
// Default deadline 2s.
type MessageHasBeenPostedHook interface {
	MessageHasBeenPosted(ctx context.Context, m *Message) error
}

// MessageWillBeUpdatedHook runs before an edit is stored. Change e.NewText
// to modify the edit; return Reject(reason) to refuse it. Deadline 250ms.
type MessageWillBeUpdatedHook interface {
	MessageWillBeUpdated(ctx context.Context, e *Edit) error
}

// MessageHasBeenUpdatedHook runs after an edit is durable; m carries the new
// text. Deadline 2s.
type MessageHasBeenUpdatedHook interface {
	MessageHasBeenUpdated(ctx context.Context, m *Message, editor string) error
}

// MessageHasBeenDeletedHook runs after a delete is durable. Deadline 2s.
type MessageHasBeenDeletedHook interface {
	MessageHasBeenDeleted(ctx context.Context, room, id, actor string) error
}

// UserWillLogInHook runs after a password check succeeded and before tokens
// are issued; Reject refuses the login. Deadline 500ms.
type UserWillLogInHook interface {
	UserWillLogIn(ctx context.Context, u Login) error
}

// UserHasLoggedInHook runs after a login issued tokens. Deadline 2s.
type UserHasLoggedInHook interface {
	UserHasLoggedIn(ctx context.Context, u Login) error
}

// UserHasJoinedRoomHook runs after a user became a room member. Deadline 2s.
type UserHasJoinedRoomHook interface {
	UserHasJoinedRoom(ctx context.Context, user, room string) error
}

// UserHasLeftRoomHook runs after a user stopped being a room member.
// Deadline 2s.
type UserHasLeftRoomHook interface {
	UserHasLeftRoom(ctx context.Context, user, room string) error
}

// WebSocketConnectHook runs after a WebSocket session opened. Deadline 2s.
type WebSocketConnectHook interface {
	OnWebSocketConnect(ctx context.Context, user string, session uint64) error
}

// WebSocketDisconnectHook runs after a WebSocket session closed. Deadline 2s.
type WebSocketDisconnectHook interface {
	OnWebSocketDisconnect(ctx context.Context, user string, session uint64) error
}

// CommandExecutor runs the slash commands the plugin registered with
// Host.RegisterCommand. Deadline 5s.
type CommandExecutor interface {
	ExecuteCommand(ctx context.Context, c *CommandArgs) (*CommandResponse, error)
}

// Ticker runs scheduled work every `tick:` interval from plugins.yaml.
type Ticker interface {
	OnTick(ctx context.Context, now time.Time) error
}

// A plugin that implements net/http.Handler serves requests under
// /plugins/{id}/ (r.URL.Path is the part after the id). Bodies stream both
// ways; call http.Flusher.Flush to push what was written so far.

// Message is a chat message. ID, Seq and TS are zero before it is stored.
type Message struct {
	ID     string
	Room   string
	Sender string // user id
	Text   string
	Thread string
	Meta   json.RawMessage // a JSON object or nil
	Seq    int64
	TS     time.Time
}

// Edit is a proposed change of a message's text.
type Edit struct {
	Room, ID, Editor string
	NewText          string
}

// Login is a user logging in.
type Login struct {
	UserID, Username, Device string
}

// CommandArgs is one invocation of a slash command: "/hello big world" has
// Trigger "hello" and Args "big world".
type CommandArgs struct {
	Trigger, Args string
	UserID, Room  string
}

// CommandResponse is what a command answers. Ephemeral responses go only to
// the sender; InRoom responses are posted to the room as the plugin's bot.
type CommandResponse struct {
	Text   string
	InRoom bool
}

// Rejection is the error a "Will" hook returns to refuse an action; Reason
// is shown to the user.
type Rejection struct{ Reason string }

func (r *Rejection) Error() string { return "rejected: " + r.Reason }

// Reject returns a *Rejection with a formatted reason.
func Reject(format string, args ...any) error {
	return &Rejection{Reason: fmt.Sprintf(format, args...)}
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
