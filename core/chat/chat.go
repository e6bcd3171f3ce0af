// Package chat is the one path every room action takes, whichever door it
// came through (WebSocket, REST, plugins): validation, membership, hooks,
// durable commit, and fan-out of an event encoded once (core/event).
package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/event"
	"github.com/unhidra/unhidra/core/hub"
	"github.com/unhidra/unhidra/core/metrics"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Draft is a message about to be committed. Hooks may change Text and Meta.
type Draft struct {
	Room, Sender, Text, Thread string
	Meta                       json.RawMessage
}

// Hooks lets the plugin host take part in room actions without chat knowing
// anything about plugins. "Will" methods run on the request path and refuse
// with an *Error; "Has" methods run after commit and must not block. The
// zero value of Options uses no hooks.
type Hooks interface {
	// MessageWillBePosted may modify d or return an *Error to reject it.
	MessageWillBePosted(ctx context.Context, d *Draft) error
	// MessageHasBeenPosted runs after commit and fan-out.
	MessageHasBeenPosted(ev store.Event)
	// MessageWillBeUpdated may change e.Text or return an *Error.
	MessageWillBeUpdated(ctx context.Context, e *EditDraft) error
	// MessageHasBeenUpdated and MessageHasBeenDeleted run after commit.
	MessageHasBeenUpdated(ev store.Event)
	MessageHasBeenDeleted(ev store.Event)
	// ReactionHasBeenAdded and ReactionHasBeenRemoved run after commit
	// (ev.Kind is reaction; ev.ActorID reacted, ev.On says which).
	ReactionHasBeenAdded(ev store.Event)
	ReactionHasBeenRemoved(ev store.Event)
	// UserHasJoinedRoom and UserHasLeftRoom run after a membership changed
	// (ChangeMembership), once per change, after its joined/left event.
	UserHasJoinedRoom(m Membership)
	UserHasLeftRoom(m Membership)
	// UserHasBeenCreated, UserHasBeenUpdated and UserHasBeenDeactivated run
	// after an account changed (users.go); actor is who changed it ("" for
	// self-registration), changed names the fields of an update.
	UserHasBeenCreated(u store.User, actor string)
	UserHasBeenUpdated(u store.User, actor string, changed []string)
	UserHasBeenDeactivated(u store.User, actor string)
	// RoomHasBeenCreated runs after a room was created, before its first
	// members' UserHasJoinedRoom; RoomHasBeenUpdated after its settings
	// changed.
	RoomHasBeenCreated(r store.Room, actor string)
	RoomHasBeenUpdated(r store.Room, actor string, changed []string)
	// SessionOpened and SessionClosed bracket a WebSocket session.
	SessionOpened(user string, session uint64)
	SessionClosed(user string, session uint64)
	// ExecuteCommand runs a slash command. ok is false when no plugin
	// registered c.Trigger; err is an *Error the sender sees.
	ExecuteCommand(ctx context.Context, c Command) (reply CommandReply, ok bool, err error)
	// ClientFrame routes an authorised plugin frame to the plugin owning its
	// namespace and returns the reply's data; err is an *Error the sender
	// sees.
	ClientFrame(ctx context.Context, f PluginFrame) (data json.RawMessage, err error)
}

// EditDraft is an edit about to be committed. Hooks may change Text.
type EditDraft struct {
	Room, ID, Editor, Text string
}

// Command is a slash command a member sent to a room: "/hello big world" has
// Trigger "hello" and Args "big world".
type Command struct {
	Trigger, Args, User, Room string
}

// CommandReply is a command's answer, posted to the room as From when InRoom,
// otherwise returned to the sender only (in its ack).
type CommandReply struct {
	Text   string
	From   string
	InRoom bool
}

// Options configures a Service.
type Options struct {
	Store     *store.Store
	Committer *store.Committer
	// Hub is this node's routing table: who is subscribed where.
	Hub *hub.Hub
	// Broker carries every event to subscribers (default: Hub itself; a
	// cluster broker wraps the Hub).
	Broker event.Broker
	// Authz decides every room action (required).
	Authz   *authz.Enforcer
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Hooks   Hooks
	// MaxText is the largest message text in bytes (default 16 KiB).
	MaxText int
	// MaxMeta is the largest meta object in bytes (default 4 KiB).
	MaxMeta int
	// MessageLimit limits sends and mutations per user, over WebSocket and
	// REST together (nil: none).
	MessageLimit *ratelimit.Limiter
	// ActionLimit limits the other room actions that write and broadcast
	// (joins, leaves, read receipts) per user; RoomLimit limits room
	// creation per user (nil: none).
	ActionLimit *ratelimit.Limiter
	RoomLimit   *ratelimit.Limiter
	// Events receives message edits and deletions (metadata only), room
	// role changes and message rate-limit refusals (nil: none).
	Events *secevent.Outbox
}

// Service implements room actions.
type Service struct {
	o      Options
	rooms  sync.Map // room id → *roomState
	typing sync.Map // session+room → last typing time (throttle)
}

// roomState caches a room and its membership so the send path does not query
// the database for every message.
type roomState struct {
	change  sync.Mutex // held by changeMembership: one change at a time
	mu      sync.RWMutex
	room    store.Room
	org     string            // the org of the room's space
	members map[string]string // user → role (mirrors members; decisions use authz)
}

// New returns a Service.
func New(o Options) *Service {
	if o.MaxText <= 0 {
		o.MaxText = 16 << 10
	}
	if o.MaxMeta <= 0 {
		o.MaxMeta = 4 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Authz == nil {
		panic("chat: Options.Authz is required")
	}
	if o.Broker == nil {
		o.Broker = o.Hub
	}
	s := &Service{o: o}
	o.Authz.OnChange(s.onAuthzChange)
	return s
}

// Store returns the service's store (for read-only REST handlers).
func (s *Service) Store() *store.Store { return s.o.Store }

// Broker returns the broker every event goes through: publish an event to
// a room, a user or one session with it (plugin events use it too).
func (s *Service) Broker() event.Broker { return s.o.Broker }

// NewSessionID returns an id for a new subscriber (a WebSocket session or
// any other), unique among this node's subscribers.
func (s *Service) NewSessionID() uint64 { return s.o.Hub.NewSessionID() }

func (s *Service) state(ctx context.Context, room string) (*roomState, error) {
	if v, ok := s.rooms.Load(room); ok {
		return v.(*roomState), nil
	}
	if _, err := uuid.Parse(room); err != nil {
		return nil, Errorf(protocol.CodeNotFound, "room %q not found", room)
	}
	r, err := s.o.Store.RoomByID(ctx, room)
	if errors.Is(err, store.ErrNotFound) {
		return nil, Errorf(protocol.CodeNotFound, "room %q not found", room)
	}
	if err != nil {
		return nil, err
	}
	ms, err := s.o.Store.Members(ctx, room)
	if err != nil {
		return nil, err
	}
	sp, err := s.o.Store.SpaceByID(ctx, r.SpaceID)
	if err != nil {
		return nil, fmt.Errorf("room %s: space %s: %w", room, r.SpaceID, err)
	}
	st := &roomState{room: r, org: sp.OrgID, members: make(map[string]string, len(ms))}
	for _, m := range ms {
		st.members[m.UserID] = m.Role
	}
	v, _ := s.rooms.LoadOrStore(room, st)
	return v.(*roomState), nil
}

// request builds the authorization request for user doing act in st.
func (st *roomState) request(user, act string) authz.Request {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return authz.Request{Sub: authz.User(user), Room: st.room.ID, Space: st.room.SpaceID, Org: st.org, Act: act,
		Env: authz.Env{Kind: st.room.Kind, Classification: st.room.Classification}}
}

// allowed asks the enforcer whether user may do act in the room.
func (s *Service) allowed(st *roomState, user, act string) bool {
	return s.o.Authz.Decide(st.request(user, act))
}

// authorize loads room and checks that the caller may do act there. A
// caller who may not even see the room cannot tell it from a missing one
// (not_found); one who may see it gets forbidden, or "join first" for a
// public room they may join.
func (s *Service) authorize(ctx context.Context, id auth.Identity, room, act string) (*roomState, error) {
	st, err := s.state(ctx, room)
	if err != nil {
		return nil, err
	}
	if s.allowed(st, id.UserID, act) {
		return st, nil
	}
	return nil, s.denied(st, id.UserID, act)
}

func (s *Service) denied(st *roomState, user, act string) error {
	st.mu.RLock()
	room, kind := st.room.ID, st.room.Kind
	_, member := st.members[user]
	st.mu.RUnlock()
	if act != authz.OpRoomRead && (member || s.allowed(st, user, authz.OpRoomRead)) {
		return Errorf(protocol.CodeForbidden, "you may not %s in room %s", act, room)
	}
	if !member && kind == store.KindPublic && act != authz.OpRoomJoin && s.allowed(st, user, authz.OpRoomJoin) {
		return Errorf(protocol.CodeForbidden, "join room %s first", room)
	}
	return Errorf(protocol.CodeNotFound, "room %q not found", room)
}

// Allowed reports whether user may do act in room (for REST handlers that
// read room data directly).
func (s *Service) Allowed(ctx context.Context, id auth.Identity, room, act string) error {
	_, err := s.authorize(ctx, id, room, act)
	return err
}

// setMember records a membership in the room cache and the enforcer.
func (s *Service) setMember(st *roomState, user, role string) {
	st.mu.Lock()
	st.members[user] = role
	room := st.room.ID
	st.mu.Unlock()
	s.o.Authz.SetRoomRole(user, room, role)
}

// onAuthzChange runs after every policy change: sessions that may no longer
// read a room stop receiving it at once, and are told with a left frame.
func (s *Service) onAuthzChange(c authz.Change) {
	if c.Grant {
		return
	}
	var rooms []string
	if c.Subject != "" {
		if !strings.HasPrefix(c.Subject, authz.KindUser+":") {
			return
		}
		rooms = s.o.Hub.UserRooms(strings.TrimPrefix(c.Subject, authz.KindUser+":"))
	} else {
		rooms = s.o.Hub.Rooms()
	}
	for _, room := range rooms {
		s.recheckRoom(room, c.Subject)
	}
}

// recheckRoom unsubscribes the sessions of room (of one subject, or all)
// whose user may no longer read it.
func (s *Service) recheckRoom(room, subject string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.state(ctx, room)
	if err != nil {
		return
	}
	for _, sub := range s.o.Hub.RoomSessions(room) {
		if subject != "" && authz.User(sub.UserID()) != subject {
			continue
		}
		if !s.allowed(st, sub.UserID(), authz.OpMessageRead) {
			s.o.Logger.Info("session lost read access to room", "user", sub.UserID(), "room", room)
			s.o.Broker.Unsubscribe(room, sub)
			sub.Deliver(newEvent(&protocol.Frame{Type: protocol.TypeLeft, Room: room, User: sub.UserID()}))
		}
	}
}

// Encode marshals f as protocol v1 JSON (a gateway reply, an event's payload).
func Encode(f *protocol.Frame) []byte {
	b, err := json.Marshal(f)
	if err != nil { // Frame has only marshalable fields
		panic(err)
	}
	return b
}

// newEvent encodes f once as the payload of the event every subscriber gets.
func newEvent(f *protocol.Frame) *event.Event {
	user := f.User
	if user == "" {
		user = f.From
	}
	return &event.Event{Kind: f.Type, Room: f.Room, User: user, Seq: f.Seq, Payload: Encode(f)}
}

// NewEvent is newEvent for a store event (the event a client receives live
// or in a sync reply).
func NewEvent(ev *store.Event) *event.Event {
	f := EventFrame(ev)
	return newEvent(&f)
}

// EventFrame renders a stored event as the frame clients receive.
func EventFrame(ev *store.Event) protocol.Frame {
	f := protocol.Frame{Type: ev.Kind, Room: ev.RoomID, ID: ev.MessageID, Seq: ev.Seq, TS: ev.At, Thread: ev.ThreadID}
	switch ev.Kind {
	case store.EventMessage, store.EventEdited:
		t := ev.Text
		f.Text = &t
		f.From = ev.ActorID
		if ev.Meta != "" {
			f.Meta = json.RawMessage(ev.Meta)
		}
	case store.EventDeleted:
		f.From = ev.ActorID
	case store.EventReaction:
		on := ev.On
		f.User, f.Emoji, f.On = ev.ActorID, ev.Emoji, &on
	}
	return f
}

// publish fans a committed event out to the room: encoded once, handed to
// every subscriber.
func (s *Service) publish(ev *store.Event) {
	e := NewEvent(ev)
	start := time.Now()
	n := s.o.Broker.PublishRoom(e, 0)
	if m := s.o.Metrics; m != nil {
		m.FanoutSeconds.Observe(time.Since(start).Seconds())
		m.Deliveries.Add(float64(n))
		if ev.Kind == store.EventMessage {
			m.Messages.Inc()
		}
	}
}

// Ack is what a mutating call reports back once its event is durable.
type Ack struct {
	Room      string
	ID        string
	Seq       int64
	TS        int64
	Duplicate bool
	// Reply is set when the send was a slash command: its answer.
	Reply *CommandReply
}

// Frame renders the ack for ref.
func (a Ack) Frame(ref string) protocol.Frame {
	f := protocol.Frame{Type: protocol.TypeAck, Ref: ref, Room: a.Room, ID: a.ID, Seq: a.Seq, TS: a.TS, Duplicate: a.Duplicate}
	if a.Reply != nil {
		t := a.Reply.Text
		f.Text, f.From = &t, a.Reply.From
	}
	return f
}

// SendRequest is a new message.
type SendRequest struct {
	Room, Text, Thread, Ref string
	Meta                    json.RawMessage
}

// Send validates, runs hooks, commits and publishes a message. done runs
// exactly once: with the ack after commit (before fan-out) or with an error.
// Send itself returns quickly; it blocks only under back-pressure (and for
// the duration of MessageWillBePosted hooks, which have deadlines).
//
// Text starting with "/" is a slash command when hooks are set: it is routed
// to the plugin that registered it and never stored; "//" sends the text
// with one slash removed.
func (s *Service) Send(ctx context.Context, id auth.Identity, req SendRequest, done func(Ack, error)) {
	if err := s.allowMessage(ctx, id); err != nil {
		done(Ack{}, err)
		return
	}
	s.send(ctx, id.UserID, true, req, done)
}

// SendAs posts as user without a membership check (plugin bots). Hooks run
// as for Send; slash commands are not interpreted.
func (s *Service) SendAs(ctx context.Context, user string, req SendRequest, done func(Ack, error)) {
	s.send(ctx, user, false, req, done)
}

func (s *Service) send(ctx context.Context, user string, asMember bool, req SendRequest, done func(Ack, error)) {
	if err := s.checkText(req.Text); err != nil {
		done(Ack{}, err)
		return
	}
	if len(req.Ref) > 128 {
		done(Ack{}, Errorf(protocol.CodeBadRequest, "ref is longer than 128 bytes"))
		return
	}
	if err := store.CheckText("ref", req.Ref); err != nil {
		done(Ack{}, AsError(err))
		return
	}
	if string(bytes.TrimSpace(req.Meta)) == "null" {
		req.Meta = nil // "meta": null means no meta, whichever door it came through
	}
	if err := s.checkMeta(req.Meta); err != nil {
		done(Ack{}, err)
		return
	}
	if req.Thread != "" {
		if _, err := uuid.Parse(req.Thread); err != nil {
			done(Ack{}, Errorf(protocol.CodeNotFound, "thread parent not found in this room"))
			return
		}
	}
	if asMember {
		if _, err := s.authorize(ctx, auth.Identity{UserID: user}, req.Room, authz.OpMessageSend); err != nil {
			done(Ack{}, err)
			return
		}
	} else if _, err := s.state(ctx, req.Room); err != nil {
		done(Ack{}, err)
		return
	}
	if asMember && s.o.Hooks != nil && strings.HasPrefix(req.Text, "/") {
		if strings.HasPrefix(req.Text, "//") {
			req.Text = req.Text[1:]
		} else {
			s.command(ctx, user, req, done)
			return
		}
	}
	d := Draft{Room: req.Room, Sender: user, Text: req.Text, Thread: req.Thread, Meta: req.Meta}
	if s.o.Hooks != nil {
		if err := s.o.Hooks.MessageWillBePosted(ctx, &d); err != nil {
			done(Ack{}, err)
			return
		}
		if err := s.checkText(d.Text); err != nil {
			done(Ack{}, err)
			return
		}
	}
	mid, _ := uuid.NewV7()
	op := &store.Op{Kind: store.EventMessage, RoomID: req.Room, Actor: user, MessageID: mid.String(),
		Ref: req.Ref, Text: d.Text, ThreadID: d.Thread, Meta: string(d.Meta)}
	op.Done = func(r store.Result) {
		if r.Err != nil {
			done(Ack{}, AsError(r.Err))
			return
		}
		done(Ack{Room: r.Event.RoomID, ID: r.Event.MessageID, Seq: r.Event.Seq, TS: r.Event.At, Duplicate: r.Dup}, nil)
		if !r.Dup {
			s.publish(&r.Event)
			if s.o.Hooks != nil {
				s.o.Hooks.MessageHasBeenPosted(r.Event)
			}
		}
	}
	if err := s.o.Committer.Submit(ctx, op); err != nil {
		done(Ack{}, AsError(err))
	}
}

// command runs a slash command; an in-room reply is posted as the plugin's
// bot and the sender's ack carries that message's id and seq.
func (s *Service) command(ctx context.Context, user string, req SendRequest, done func(Ack, error)) {
	line := strings.TrimSpace(req.Text[1:])
	trigger, args, _ := strings.Cut(line, " ")
	if i := strings.IndexAny(trigger, "\t\n"); i >= 0 {
		trigger, args = trigger[:i], trigger[i+1:]+" "+args
	}
	c := Command{Trigger: trigger, Args: strings.TrimSpace(args), User: user, Room: req.Room}
	reply, ok, err := s.o.Hooks.ExecuteCommand(ctx, c)
	if err != nil {
		done(Ack{}, err)
		return
	}
	if !ok {
		done(Ack{}, Errorf(protocol.CodeNotFound, "no command /%s here; start with // to send text beginning with /", trigger))
		return
	}
	if !reply.InRoom || strings.TrimSpace(reply.Text) == "" {
		done(Ack{Room: req.Room, Reply: &reply}, nil)
		return
	}
	s.SendAs(ctx, reply.From, SendRequest{Room: req.Room, Text: reply.Text, Thread: req.Thread}, func(a Ack, err error) {
		if err == nil {
			a.Reply = &reply
		}
		done(a, err)
	})
}

// checkText applies the rules of a message text: at most MaxText bytes,
// storable, and not blank.
func (s *Service) checkText(t string) error {
	if len(t) > s.o.MaxText {
		return Errorf(protocol.CodeTooLarge, "text is %d bytes; the limit is %d", len(t), s.o.MaxText)
	}
	if err := store.CheckText("text", t); err != nil {
		return AsError(err)
	}
	if blank(t) {
		return Errorf(protocol.CodeBadRequest, "text is empty")
	}
	return nil
}

// blank reports whether t shows nothing: only white space, control and
// format characters (zero-width spaces, joiners, byte-order marks).
func blank(t string) bool {
	for _, r := range t {
		if !unicode.IsSpace(r) && !unicode.IsControl(r) && !unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

func (s *Service) checkMeta(m json.RawMessage) error {
	if len(m) == 0 {
		return nil
	}
	if len(m) > s.o.MaxMeta {
		return Errorf(protocol.CodeTooLarge, "meta is %d bytes; the limit is %d", len(m), s.o.MaxMeta)
	}
	var obj map[string]any
	if err := json.Unmarshal(m, &obj); err != nil || obj == nil {
		return Errorf(protocol.CodeBadRequest, "meta must be a JSON object")
	}
	if err := store.CheckJSON("meta", m); err != nil {
		return AsError(err)
	}
	return nil
}

// MutateRequest is an edit, delete or reaction of message ID in Room.
type MutateRequest struct {
	Kind  string // store.EventEdited, EventDeleted or EventReaction
	Room  string
	ID    string
	Text  string
	Emoji string
	On    bool
}

// Mutate edits, deletes or reacts to a message; done runs once as for Send.
func (s *Service) Mutate(ctx context.Context, id auth.Identity, req MutateRequest, done func(Ack, error)) {
	if err := s.allowMessage(ctx, id); err != nil {
		done(Ack{}, err)
		return
	}
	if _, err := uuid.Parse(req.ID); err != nil {
		done(Ack{}, Errorf(protocol.CodeNotFound, "message not found in this room"))
		return
	}
	switch req.Kind {
	case store.EventEdited:
		if err := s.checkText(req.Text); err != nil {
			done(Ack{}, err)
			return
		}
	case store.EventReaction:
		if req.Emoji == "" || len(req.Emoji) > 64 || store.CheckText("emoji", req.Emoji) != nil || strings.ContainsAny(req.Emoji, " \t\n") {
			done(Ack{}, Errorf(protocol.CodeBadRequest, "emoji must be 1–64 bytes of UTF-8 without spaces or NUL"))
			return
		}
	case store.EventDeleted:
	default:
		done(Ack{}, Errorf(protocol.CodeBadRequest, "unknown change %q", req.Kind))
		return
	}
	act, anyAct := authz.OpMessageReact, ""
	switch req.Kind {
	case store.EventEdited:
		act, anyAct = authz.OpMessageEdit, authz.OpMessageEditAny
	case store.EventDeleted:
		act, anyAct = authz.OpMessageDelete, authz.OpMessageDelAny
	}
	st, err := s.authorize(ctx, id, req.Room, act)
	if err != nil && anyAct != "" {
		// A moderator who may change others' messages need not be able to
		// change their own (e.g. an orgadmin who is not a room member).
		var e2 error
		st, e2 = s.authorize(ctx, id, req.Room, anyAct)
		if e2 == nil {
			err = nil
		}
	}
	if err != nil {
		done(Ack{}, err)
		return
	}
	if req.Kind == store.EventEdited && s.o.Hooks != nil {
		e := EditDraft{Room: req.Room, ID: req.ID, Editor: id.UserID, Text: req.Text}
		if err := s.o.Hooks.MessageWillBeUpdated(ctx, &e); err != nil {
			done(Ack{}, err)
			return
		}
		if err := s.checkText(e.Text); err != nil {
			done(Ack{}, err)
			return
		}
		req.Text = e.Text
	}
	// Privileged lets the store change someone else's message.
	privileged := anyAct != "" && s.allowed(st, id.UserID, anyAct)
	op := &store.Op{Kind: req.Kind, RoomID: req.Room, Actor: id.UserID, Target: req.ID, Text: req.Text,
		Emoji: req.Emoji, On: req.On, Privileged: privileged}
	op.Done = func(r store.Result) {
		if r.Err != nil {
			done(Ack{}, AsError(r.Err))
			return
		}
		done(Ack{Room: req.Room, ID: req.ID, Seq: r.Event.Seq, TS: r.Event.At}, nil)
		if !r.NoChange {
			s.publish(&r.Event)
			if t, ok := messageEvents[r.Event.Kind]; ok {
				d := map[string]string{"room": req.Room, "seq": strconv.FormatInt(r.Event.Seq, 10)}
				if privileged {
					d["privileged"] = "true"
				}
				s.o.Events.Emit(ctx, secevent.Event{Type: t, Actor: id.UserID, Target: req.ID, TargetKind: "message",
					Outcome: secevent.Success, Details: d})
			}
			if s.o.Hooks != nil {
				switch r.Event.Kind {
				case store.EventEdited:
					s.o.Hooks.MessageHasBeenUpdated(r.Event)
				case store.EventDeleted:
					s.o.Hooks.MessageHasBeenDeleted(r.Event)
				case store.EventReaction:
					if r.Event.On {
						s.o.Hooks.ReactionHasBeenAdded(r.Event)
					} else {
						s.o.Hooks.ReactionHasBeenRemoved(r.Event)
					}
				}
			}
		}
	}
	if err := s.o.Committer.Submit(ctx, op); err != nil {
		done(Ack{}, AsError(err))
	}
}

// messageEvents are the security events of message changes (metadata only:
// never the text).
var messageEvents = map[string]secevent.Type{store.EventEdited: secevent.MessageEdited, store.EventDeleted: secevent.MessageDeleted}

// allowMessage applies the per-user message rate.
func (s *Service) allowMessage(ctx context.Context, id auth.Identity) error {
	if ok, wait := s.o.MessageLimit.Allow(id.UserID); !ok {
		s.o.Events.RateLimited(secevent.WithActor(ctx, id.UserID), "messages", "user", id.UserID, s.o.MessageLimit.Rate(), wait)
		return RateLimited(wait, "you are sending faster than %s", s.o.MessageLimit.Rate())
	}
	return nil
}

// allowAction applies the per-user rate of joins, leaves and read receipts.
func (s *Service) allowAction(user, what string) error {
	if ok, wait := s.o.ActionLimit.Allow(user); !ok {
		return RateLimited(wait, "too many joins, leaves and read receipts (limit %s); this %s was not done", s.o.ActionLimit.Rate(), what)
	}
	return nil
}

// SendWait is Send for callers that want to block (REST).
func (s *Service) SendWait(ctx context.Context, id auth.Identity, req SendRequest) (Ack, error) {
	return wait(ctx, func(done func(Ack, error)) { s.Send(ctx, id, req, done) })
}

// MutateWait is Mutate for callers that want to block (REST).
func (s *Service) MutateWait(ctx context.Context, id auth.Identity, req MutateRequest) (Ack, error) {
	return wait(ctx, func(done func(Ack, error)) { s.Mutate(ctx, id, req, done) })
}

func wait(ctx context.Context, f func(func(Ack, error))) (Ack, error) {
	type res struct {
		a   Ack
		err error
	}
	ch := make(chan res, 1)
	f(func(a Ack, err error) { ch <- res{a, err} })
	select {
	case r := <-ch:
		return r.a, r.err
	case <-ctx.Done():
		return Ack{}, Errorf(protocol.CodeUnavailable, "timed out waiting for commit")
	}
}
