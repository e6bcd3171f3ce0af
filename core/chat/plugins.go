package chat

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/event"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// MaxPluginFrameData is the largest `data` a client may send a plugin.
const MaxPluginFrameData = 32 << 10

// PluginFrame is a client's frame in a plugin's namespace (protocol type
// "plugin"). User and Session are the verified sender.
type PluginFrame struct {
	Plugin, Op, Ref, Room string
	User                  string
	Session               uint64
	Data                  json.RawMessage
}

// PluginFrame authorises a client's frame to a plugin and returns the
// plugin's answer. A frame naming a room is decided (plugin.frame) in that
// room, so only its members pass; one naming none is decided system-wide.
// Errors are *Error values the sender sees; nothing reaches the plugin
// unless the frame passed.
func (s *Service) PluginFrame(ctx context.Context, id auth.Identity, f PluginFrame) (json.RawMessage, error) {
	if len(f.Data) > MaxPluginFrameData {
		return nil, Errorf(protocol.CodeTooLarge, "data is %d bytes; the limit is %d", len(f.Data), MaxPluginFrameData)
	}
	if f.Room != "" {
		if _, err := s.authorize(ctx, id, f.Room, authz.OpPluginFrame); err != nil {
			return nil, err
		}
	} else if !s.o.Authz.Decide(authz.Request{Sub: authz.User(id.UserID), Act: authz.OpPluginFrame}) {
		return nil, Errorf(protocol.CodeForbidden, "you may not send frames to plugins")
	}
	if s.o.Hooks == nil {
		return nil, Errorf(protocol.CodeNotFound, "no plugin %q answers client frames", f.Plugin)
	}
	f.User = id.UserID
	return s.o.Hooks.ClientFrame(ctx, f)
}

// PluginEvent is an event a plugin publishes in its own namespace to
// exactly one target: a room, a user, or one session.
type PluginEvent struct {
	Plugin, Name string
	Room, User   string
	Session      uint64
	// Data is a JSON value, or empty for none.
	Data json.RawMessage
}

// PublishPluginEvent hands ev, encoded once, to its target through the
// broker (PublishRoom, PublishUser, PublishSession) and returns how many
// subscribers on this node took it. It is where plugin events meet the
// broker; the caller has validated ev.
func (s *Service) PublishPluginEvent(ev PluginEvent) (int, error) {
	f := protocol.Frame{Type: protocol.TypePluginEvent, Plugin: ev.Plugin, Name: ev.Name, Room: ev.Room, Data: ev.Data}
	b, err := json.Marshal(&f)
	if err != nil {
		return 0, fmt.Errorf("plugin %s event %q: %w", ev.Plugin, ev.Name, err)
	}
	e := &event.Event{Kind: f.Type, Room: ev.Room, User: ev.User, Session: ev.Session, Payload: b}
	switch {
	case ev.Room != "":
		return s.o.Broker.PublishRoom(e, 0), nil
	case ev.User != "":
		return s.o.Broker.PublishUser(ev.User, e), nil
	}
	return s.o.Broker.PublishSession(ev.Session, e), nil
}
