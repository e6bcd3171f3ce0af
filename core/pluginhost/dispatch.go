package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// The host is the core's one plugin seam.
var (
	_ chat.Hooks      = (*Host)(nil)
	_ auth.LoginHooks = (*Host)(nil)
)

// Failures a call can have besides the plugin's own error.
var (
	errDown       = errors.New("plugin is not running")
	errBypassed   = errors.New("circuit breaker is open")
	errBadVerdict = errors.New("plugin returned an invalid answer")
)

// call runs one hook call on m's current process under the hook's deadline
// and breaker, and counts it. A non-nil error means the call failed and the
// hook's failure policy applies.
func (m *managed) call(ctx context.Context, hs *hookState, fn func(context.Context, *plugin.Remote) error) error {
	hs.calls.Add(1)
	if hs.mCalls != nil {
		hs.mCalls.Inc()
	}
	p := hs.params.Load()
	inst := m.cur.Load()
	if inst == nil {
		return hs.failed(errDown, false)
	}
	if !hs.br.allow(p.cooldown) {
		return hs.failed(errBypassed, false)
	}
	inst.inflight.Add(1)
	defer inst.inflight.Add(-1)
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	start := time.Now()
	err := fn(cctx, inst.remote)
	el := time.Since(start)
	hs.timed.Add(1)
	hs.nanos.Add(int64(el))
	timedOut := err != nil && ctx.Err() == nil &&
		(cctx.Err() == context.DeadlineExceeded || status.Code(err) == codes.DeadlineExceeded)
	cancel()
	if hs.mSeconds != nil {
		hs.mSeconds.Observe(el.Seconds())
	}
	// An outcome of a process that was replaced meanwhile (crashed,
	// swapped) is not fed to the breaker of its successor.
	current := m.cur.Load() == inst
	if err != nil {
		if current {
			hs.br.record(false, p.failures)
		}
		if timedOut {
			err = fmt.Errorf("%s missed its %v deadline", hs.name, p.timeout)
		}
		return hs.failed(err, timedOut)
	}
	if current {
		hs.br.record(true, p.failures)
	}
	return nil
}

func (hs *hookState) failed(err error, timedOut bool) error {
	hs.errors.Add(1)
	if hs.mErrors != nil {
		hs.mErrors.Inc()
	}
	if timedOut {
		hs.timeout.Add(1)
		if hs.mTimeouts != nil {
			hs.mTimeouts.Inc()
		}
	}
	return err
}

// failure logs a failed hook call and applies its policy: nil lets the
// event through (open), an *chat.Error refuses it (closed).
func (m *managed) failure(hs *hookState, err error, what string) error {
	pol := hs.params.Load().policy
	if !errors.Is(err, errBypassed) && !errors.Is(err, errDown) {
		m.log().Warn("plugin hook failed", "hook", hs.name, "policy", pol, "err", err)
	}
	if pol == FailClosed {
		return chat.Errorf(protocol.CodeUnavailable, "%s refused: plugin %s is unavailable; try again shortly", what, m.id)
	}
	return nil
}

// verdictHooks calls a "Will" hook on every plugin that implements it, in
// config order, stopping at the first rejection.
func (h *Host) verdictHooks(ctx context.Context, hook pb.Hook, what, actor string,
	call func(context.Context, *plugin.Remote) (*pb.MessageVerdict, error), apply func(*pb.MessageVerdict) error) error {
	for _, m := range *h.order.Load() {
		if !m.implements(hook) || m.bot == actor {
			continue // a plugin never filters its own bot's posts
		}
		hs := m.hooks[hook]
		var v *pb.MessageVerdict
		err := m.call(ctx, hs, func(ctx context.Context, c *plugin.Remote) error {
			var err error
			v, err = call(ctx, c)
			return err
		})
		if err == nil {
			err = checkVerdict(v)
			if err == nil && v.Action == pb.Action_ACTION_MODIFY && apply != nil {
				err = apply(v)
			}
			if err != nil {
				hs.failed(err, false)
			}
		}
		if err != nil {
			if rerr := m.failure(hs, err, what); rerr != nil {
				return rerr
			}
			continue
		}
		if v.Action == pb.Action_ACTION_REJECT {
			reason := strings.TrimSpace(v.Reason)
			if reason == "" {
				reason = what + " refused by plugin " + m.id
			}
			return chat.Errorf(protocol.CodeForbidden, "%s", reason)
		}
	}
	return nil
}

func checkVerdict(v *pb.MessageVerdict) error {
	if v == nil {
		return errBadVerdict
	}
	switch v.Action {
	case pb.Action_ACTION_ALLOW, pb.Action_ACTION_MODIFY:
	case pb.Action_ACTION_REJECT:
		if !utf8.ValidString(v.Reason) || len(v.Reason) > 1024 {
			return fmt.Errorf("%w: reject reason is not UTF-8 or longer than 1024 bytes", errBadVerdict)
		}
	default:
		return fmt.Errorf("%w: unknown action %d", errBadVerdict, v.Action)
	}
	return nil
}

func checkModifiedText(t string) error {
	if strings.TrimSpace(t) == "" || !utf8.ValidString(t) {
		return fmt.Errorf("%w: modified text is empty or not UTF-8", errBadVerdict)
	}
	return nil
}

func toPB(d *chat.Draft) *pb.Message {
	return &pb.Message{Room: d.Room, Sender: d.Sender, Text: d.Text, Thread: d.Thread, MetaJson: d.Meta}
}

// MessageWillBePosted implements chat.Hooks.
func (h *Host) MessageWillBePosted(ctx context.Context, d *chat.Draft) error {
	return h.verdictHooks(ctx, pb.Hook_HOOK_MESSAGE_WILL_BE_POSTED, "message", d.Sender,
		func(ctx context.Context, c *plugin.Remote) (*pb.MessageVerdict, error) {
			return c.MessageWillBePosted(ctx, &pb.MessageWillBePostedRequest{Message: toPB(d)})
		},
		func(v *pb.MessageVerdict) error {
			if err := checkModifiedText(v.Text); err != nil {
				return err
			}
			if len(v.MetaJson) > 0 {
				if v.MetaJson[0] != '{' {
					return fmt.Errorf("%w: modified meta is not a JSON object", errBadVerdict)
				}
				d.Meta = append(d.Meta[:0:0], v.MetaJson...)
			}
			d.Text = v.Text
			return nil
		})
}

// MessageWillBeUpdated implements chat.Hooks.
func (h *Host) MessageWillBeUpdated(ctx context.Context, e *chat.EditDraft) error {
	return h.verdictHooks(ctx, pb.Hook_HOOK_MESSAGE_WILL_BE_UPDATED, "edit", e.Editor,
		func(ctx context.Context, c *plugin.Remote) (*pb.MessageVerdict, error) {
			return c.MessageWillBeUpdated(ctx, &pb.MessageWillBeUpdatedRequest{Room: e.Room, Id: e.ID, Editor: e.Editor, NewText: e.Text})
		},
		func(v *pb.MessageVerdict) error {
			if err := checkModifiedText(v.Text); err != nil {
				return err
			}
			e.Text = v.Text
			return nil
		})
}

func userEventPB(e auth.LoginEvent) *pb.UserEvent {
	return &pb.UserEvent{UserId: e.User.ID, Username: e.User.Username, Device: e.Device, Method: e.Method,
		ClientAddr: e.IP, UserAgent: e.UserAgent}
}

// UserWillLogIn implements auth.LoginHooks.
func (h *Host) UserWillLogIn(ctx context.Context, e auth.LoginEvent) error {
	return h.verdictHooks(ctx, pb.Hook_HOOK_USER_WILL_LOG_IN, "login", "",
		func(ctx context.Context, c *plugin.Remote) (*pb.MessageVerdict, error) {
			return c.UserWillLogIn(ctx, userEventPB(e))
		}, nil)
}

// Notify queues the notification hook `hook` with req on every plugin
// implementing it, in config order, except the plugin whose bot or subject
// is except (a plugin's own actions never re-trigger it). The request and
// deadline come from the hook's declaration in plugin.proto; req must not be
// changed after the call.
func (h *Host) Notify(hook pb.Hook, except string, req proto.Message) {
	spec, ok := pb.HookSpecOf(hook)
	if !ok || spec.Request == nil {
		h.o.Logger.Error("notify: not a unary hook", "hook", hook)
		return
	}
	h.notifyExcept(hook, except, func(ctx context.Context, c *plugin.Remote) error {
		return c.Conn.Invoke(ctx, spec.FullMethod, req, spec.NewResponse())
	})
}

// Call runs the call hook `hook` on plugin id (the owner of a command,
// namespace or factor) under its deadline, breaker and counters, decoding
// the answer into resp. A failed call returns the plugin's error; the
// caller applies the hook's policy (Policy).
func (h *Host) Call(ctx context.Context, id string, hook pb.Hook, req, resp proto.Message) error {
	m := h.plugin(id)
	if m == nil || !m.implements(hook) {
		return errDown
	}
	spec, _ := pb.HookSpecOf(hook)
	return m.call(ctx, m.hooks[hook], func(ctx context.Context, c *plugin.Remote) error {
		return c.Conn.Invoke(ctx, spec.FullMethod, req, resp)
	})
}

// Implementers lists the ids of the running plugins implementing hook (and
// holding its grant), in config order.
func (h *Host) Implementers(hook pb.Hook) []string {
	var out []string
	for _, m := range *h.order.Load() {
		if m.implements(hook) {
			out = append(out, m.id)
		}
	}
	return out
}

// notifyExcept queues fn on every plugin implementing hook, in config order,
// skipping the plugin whose bot is actor. It never blocks: a plugin whose
// queue is full loses the event (counted as an error and logged).
func (h *Host) notifyExcept(hook pb.Hook, actor string, fn func(context.Context, *plugin.Remote) error) {
	for _, m := range *h.order.Load() {
		if !m.implements(hook) || (actor != "" && m.bot == actor) {
			continue
		}
		hs := m.hooks[hook]
		job := func() {
			if err := m.call(m.ctx, hs, fn); err != nil && !errors.Is(err, errBypassed) && !errors.Is(err, errDown) {
				m.log().Warn("plugin hook failed", "hook", hs.name, "err", err)
			}
		}
		select {
		case m.notify <- job:
		default:
			hs.calls.Add(1)
			hs.failed(errors.New("queue full"), false)
			m.log().Warn("plugin notification queue full; event dropped", "hook", hs.name)
		}
	}
}

func eventPB(ev store.Event) *pb.MessageEvent {
	return &pb.MessageEvent{Actor: ev.ActorID, Message: &pb.Message{Id: ev.MessageID, Room: ev.RoomID, Sender: ev.ActorID,
		Text: ev.Text, Thread: ev.ThreadID, MetaJson: []byte(ev.Meta), Seq: ev.Seq, Ts: ev.At}}
}

// MessageHasBeenPosted implements chat.Hooks.
func (h *Host) MessageHasBeenPosted(ev store.Event) {
	h.Notify(pb.Hook_HOOK_MESSAGE_HAS_BEEN_POSTED, ev.ActorID, eventPB(ev))
}

// MessageHasBeenUpdated implements chat.Hooks.
func (h *Host) MessageHasBeenUpdated(ev store.Event) {
	h.Notify(pb.Hook_HOOK_MESSAGE_HAS_BEEN_UPDATED, ev.ActorID, eventPB(ev))
}

// MessageHasBeenDeleted implements chat.Hooks.
func (h *Host) MessageHasBeenDeleted(ev store.Event) {
	h.Notify(pb.Hook_HOOK_MESSAGE_HAS_BEEN_DELETED, ev.ActorID, eventPB(ev))
}

func roomEventPB(m chat.Membership) *pb.RoomEvent {
	return &pb.RoomEvent{UserId: m.User, Room: m.Room, Actor: m.Actor, Reason: m.Reason, Role: m.Role}
}

// exceptActor is the bot a notification of actor's change skips: the
// acting plugin's own ("plugin:<id>"; a plugin is not told of its own
// change), or actor itself when it is a plugin's bot user.
func (h *Host) exceptActor(actor string) string {
	if id, ok := strings.CutPrefix(actor, authz.KindPlugin+":"); ok {
		if m := h.plugin(id); m != nil {
			return m.bot
		}
		return ""
	}
	return actor
}

// UserHasJoinedRoom implements chat.Hooks.
func (h *Host) UserHasJoinedRoom(m chat.Membership) {
	h.Notify(pb.Hook_HOOK_USER_HAS_JOINED_ROOM, h.exceptActor(m.Actor), roomEventPB(m))
}

// UserHasLeftRoom implements chat.Hooks.
func (h *Host) UserHasLeftRoom(m chat.Membership) {
	h.Notify(pb.Hook_HOOK_USER_HAS_LEFT_ROOM, h.exceptActor(m.Actor), roomEventPB(m))
}

func reactionPB(ev store.Event) *pb.ReactionEvent {
	return &pb.ReactionEvent{Room: ev.RoomID, MessageId: ev.MessageID, UserId: ev.ActorID, Emoji: ev.Emoji, Seq: ev.Seq, Ts: ev.At}
}

// ReactionHasBeenAdded implements chat.Hooks.
func (h *Host) ReactionHasBeenAdded(ev store.Event) {
	h.Notify(pb.Hook_HOOK_REACTION_HAS_BEEN_ADDED, ev.ActorID, reactionPB(ev))
}

// ReactionHasBeenRemoved implements chat.Hooks.
func (h *Host) ReactionHasBeenRemoved(ev store.Event) {
	h.Notify(pb.Hook_HOOK_REACTION_HAS_BEEN_REMOVED, ev.ActorID, reactionPB(ev))
}

// hookUserPB is a user as the user lifecycle hooks show it: no email
// (these hooks need no grant; users.read's host calls show it).
func hookUserPB(u store.User) *pb.User {
	out := userPB(u)
	out.Email = ""
	return out
}

// UserHasBeenCreated implements chat.Hooks.
func (h *Host) UserHasBeenCreated(u store.User, actor string) {
	h.Notify(pb.Hook_HOOK_USER_HAS_BEEN_CREATED, h.exceptActor(actor), &pb.UserLifecycleEvent{User: hookUserPB(u), Actor: actor})
}

// UserHasBeenUpdated implements chat.Hooks.
func (h *Host) UserHasBeenUpdated(u store.User, actor string, changed []string) {
	h.Notify(pb.Hook_HOOK_USER_HAS_BEEN_UPDATED, h.exceptActor(actor), &pb.UserLifecycleEvent{User: hookUserPB(u), Actor: actor, Changed: changed})
}

// UserHasBeenDeactivated implements chat.Hooks.
func (h *Host) UserHasBeenDeactivated(u store.User, actor string) {
	h.Notify(pb.Hook_HOOK_USER_HAS_BEEN_DEACTIVATED, h.exceptActor(actor), &pb.UserLifecycleEvent{User: hookUserPB(u), Actor: actor})
}

func roomPB(r store.Room) *pb.Room {
	return &pb.Room{Id: r.ID, Space: r.SpaceID, Name: r.Name, Kind: r.Kind, Topic: r.Topic}
}

// RoomHasBeenCreated implements chat.Hooks.
func (h *Host) RoomHasBeenCreated(r store.Room, actor string) {
	h.Notify(pb.Hook_HOOK_ROOM_HAS_BEEN_CREATED, h.exceptActor(actor), &pb.RoomLifecycleEvent{Room: roomPB(r), Actor: actor})
}

// RoomHasBeenUpdated implements chat.Hooks.
func (h *Host) RoomHasBeenUpdated(r store.Room, actor string, changed []string) {
	h.Notify(pb.Hook_HOOK_ROOM_HAS_BEEN_UPDATED, h.exceptActor(actor), &pb.RoomLifecycleEvent{Room: roomPB(r), Actor: actor, Changed: changed})
}

// SessionOpened implements chat.Hooks.
func (h *Host) SessionOpened(user string, session uint64) {
	h.Notify(pb.Hook_HOOK_ON_WEB_SOCKET_CONNECT, "", &pb.ConnectionEvent{UserId: user, SessionId: session})
}

// SessionClosed implements chat.Hooks.
func (h *Host) SessionClosed(user string, session uint64) {
	h.Notify(pb.Hook_HOOK_ON_WEB_SOCKET_DISCONNECT, "", &pb.ConnectionEvent{UserId: user, SessionId: session})
}

// UserHasLoggedIn implements auth.LoginHooks.
func (h *Host) UserHasLoggedIn(e auth.LoginEvent) {
	h.Notify(pb.Hook_HOOK_USER_HAS_LOGGED_IN, "", userEventPB(e))
}

// ExecuteCommand implements chat.Hooks: it routes /trigger to the plugin
// that registered it.
func (h *Host) ExecuteCommand(ctx context.Context, c chat.Command) (chat.CommandReply, bool, error) {
	h.cmdMu.RLock()
	r := h.commands[c.Trigger]
	h.cmdMu.RUnlock()
	if r == nil || h.plugin(r.m.id) != r.m {
		return chat.CommandReply{}, false, nil
	}
	m := r.m
	hs := m.hooks[pb.Hook_HOOK_EXECUTE_COMMAND]
	var resp *pb.CommandResponse
	err := m.call(ctx, hs, func(ctx context.Context, cl *plugin.Remote) error {
		var err error
		resp, err = cl.ExecuteCommand(ctx, &pb.CommandRequest{Trigger: c.Trigger, Args: c.Args, UserId: c.User, Room: c.Room})
		return err
	})
	if err == nil && (resp == nil || !utf8.ValidString(resp.Text)) {
		err = hs.failed(fmt.Errorf("%w: command response is not UTF-8", errBadVerdict), false)
	}
	if err != nil {
		m.log().Warn("plugin command failed", "command", c.Trigger, "err", err)
		msg := "plugin " + m.id + " is unavailable; try again shortly"
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unknown {
			msg = st.Message() // the plugin's own error text
		}
		return chat.CommandReply{}, true, chat.Errorf(protocol.CodeUnavailable, "/%s: %s", c.Trigger, msg)
	}
	return chat.CommandReply{Text: resp.Text, From: m.bot, InRoom: resp.Visibility == pb.Visibility_VISIBILITY_IN_ROOM}, true, nil
}
