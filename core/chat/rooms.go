package chat

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/event"
	"github.com/unhidra/unhidra/core/store"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// CreateRoomRequest is the body of POST /v1/rooms.
type CreateRoomRequest struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Space   string   `json:"space,omitempty"`
	Topic   string   `json:"topic,omitempty"`
	Members []string `json:"members,omitempty"` // user ids or usernames
}

// CreateRoom creates a room with the caller as owner. A direct room has
// exactly one other member and is unique per pair: asking again returns the
// existing room with created=false.
func (s *Service) CreateRoom(ctx context.Context, id auth.Identity, req CreateRoomRequest) (store.Room, bool, error) {
	req.Name = strings.TrimSpace(req.Name)
	if req.Kind == "" {
		req.Kind = store.KindPublic
	}
	switch req.Kind {
	case store.KindPublic, store.KindPrivate, store.KindDirect, store.KindGroup:
	default:
		return store.Room{}, false, Errorf(protocol.CodeBadRequest, "kind %q: want public, private, direct or group", req.Kind)
	}
	if req.Name == "" && req.Kind != store.KindDirect && req.Kind != store.KindGroup {
		return store.Room{}, false, Errorf(protocol.CodeBadRequest, "name is required")
	}
	if err := store.CheckText("name", req.Name); err != nil {
		return store.Room{}, false, AsError(err)
	}
	if utf8.RuneCountInString(req.Name) > 100 {
		return store.Room{}, false, Errorf(protocol.CodeBadRequest, "name is longer than 100 characters")
	}
	if err := store.CheckText("topic", req.Topic); err != nil {
		return store.Room{}, false, AsError(err)
	}
	if len(req.Topic) > 500 {
		return store.Room{}, false, Errorf(protocol.CodeBadRequest, "topic is longer than 500 bytes")
	}
	if req.Space == "" {
		req.Space = store.DefaultSpace
	}
	sp, err := s.o.Store.SpaceByID(ctx, req.Space)
	if err != nil {
		return store.Room{}, false, Errorf(protocol.CodeNotFound, "space %q not found", req.Space)
	}
	spaceReq := authz.Request{Sub: authz.User(id.UserID), Space: sp.ID, Org: sp.OrgID}
	if !s.o.Authz.Decide(withAct(spaceReq, authz.OpRoomCreate)) {
		if !s.o.Authz.Decide(withAct(spaceReq, authz.OpSpaceRead)) {
			return store.Room{}, false, Errorf(protocol.CodeNotFound, "space %q not found", req.Space)
		}
		return store.Room{}, false, Errorf(protocol.CodeForbidden, "you may not create rooms in space %s", req.Space)
	}
	if len(req.Members) > 1000 {
		return store.Room{}, false, Errorf(protocol.CodeBadRequest, "at most 1000 initial members")
	}
	// Resolve members (ids or usernames), dropping the creator and repeats.
	seen := map[string]bool{id.UserID: true}
	var others []string
	refs := map[string]string{}
	for _, m := range req.Members {
		u, err := s.resolveUser(ctx, m)
		if err != nil {
			return store.Room{}, false, err
		}
		if !seen[u.ID] {
			if err := s.inScope(u.ID, sp.ID, sp.OrgID, m); err != nil {
				return store.Room{}, false, err
			}
			seen[u.ID] = true
			others = append(others, u.ID)
			refs[u.ID] = m
		}
	}
	if err := s.checkAdds(ctx, id.UserID, others, refs); err != nil {
		return store.Room{}, false, err
	}
	now := store.Now()
	r := store.Room{ID: uuid.NewString(), SpaceID: req.Space, Name: req.Name, Kind: req.Kind, Topic: req.Topic,
		CreatedBy: id.UserID, CreatedAt: now}
	if req.Kind == store.KindDirect {
		if len(others) != 1 {
			return store.Room{}, false, Errorf(protocol.CodeBadRequest, "a direct room has exactly one other member")
		}
		pair := []string{id.UserID, others[0]}
		sort.Strings(pair)
		key := pair[0] + ":" + pair[1]
		r.DirectKey = &key
	}
	if req.Kind == store.KindGroup && len(others) < 1 {
		return store.Room{}, false, Errorf(protocol.CodeBadRequest, "a group room needs at least one other member")
	}
	members := []store.Member{{RoomID: r.ID, UserID: id.UserID, Role: "owner", JoinedAt: now}}
	for _, u := range others {
		members = append(members, store.Member{RoomID: r.ID, UserID: u, Role: "member", JoinedAt: now})
	}
	if ok, wait := s.o.RoomLimit.Allow(id.UserID); !ok {
		return store.Room{}, false, RateLimited(wait, "you are creating rooms faster than %s", s.o.RoomLimit.Rate())
	}
	if err := s.o.Store.CreateRoom(ctx, &r, members); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// The pair's direct room exists (r is it): whoever of the pair
			// is no longer in it (left, or was deactivated) is back in.
			for _, u := range []string{id.UserID, others[0]} {
				role := "member"
				if u == r.CreatedBy {
					role = "owner"
				}
				m := Membership{Room: r.ID, User: u, Actor: id.UserID, Reason: pb.MembershipReason_MEMBERSHIP_REASON_CREATED, Role: role}
				if err := s.enterIfAbsent(ctx, m); err != nil {
					return store.Room{}, false, err
				}
			}
			return r, false, nil
		}
		return store.Room{}, false, err
	}
	// The room is new and its id known only here: its state starts empty and
	// the members enter it one by one through the one membership path (the
	// store already has them, from the same transaction as the room).
	st := &roomState{room: r, org: sp.OrgID, members: make(map[string]string, len(members))}
	s.rooms.Store(r.ID, st)
	if s.o.Hooks != nil {
		s.o.Hooks.RoomHasBeenCreated(r, id.UserID)
	}
	for _, m := range members {
		if _, err := s.changeMembership(ctx, st, Membership{Room: r.ID, User: m.UserID, Actor: id.UserID,
			Reason: pb.MembershipReason_MEMBERSHIP_REASON_CREATED, Role: m.Role}, true); err != nil {
			return store.Room{}, false, err
		}
	}
	return r, true, nil
}

// enterIfAbsent applies m unless m.User is a member of m.Room already
// (whatever their role).
func (s *Service) enterIfAbsent(ctx context.Context, m Membership) error {
	st, err := s.state(ctx, m.Room)
	if err != nil {
		return err
	}
	st.mu.RLock()
	_, had := st.members[m.User]
	st.mu.RUnlock()
	if had {
		return nil
	}
	_, err = s.changeMembership(ctx, st, m, false)
	return err
}

func withAct(r authz.Request, act string) authz.Request {
	r.Act = act
	return r
}

// inScope checks that user belongs to the org (or the space) a room is in:
// nobody is pulled into another org's rooms. The error does not tell
// whether the account exists.
func (s *Service) inScope(user, space, org, ref string) error {
	sub := authz.User(user)
	req := authz.Request{Space: space, Org: org}
	if s.o.Authz.HoldsInChain(sub, authz.RoleGuest, req) {
		return nil
	}
	return Errorf(protocol.CodeNotFound, "user %q not found in this org", ref)
}

func (s *Service) resolveUser(ctx context.Context, ref string) (store.User, error) {
	var (
		u   store.User
		err error
	)
	if _, perr := uuid.Parse(ref); perr == nil {
		u, err = s.o.Store.UserByID(ctx, ref)
	} else {
		u, err = s.o.Store.UserByLogin(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.DeactivatedAt != 0) {
		return store.User{}, Errorf(protocol.CodeNotFound, "user %q not found", ref)
	}
	return u, err
}

// Room returns a room the caller may see: a member, or anyone for a public room.
func (s *Service) Room(ctx context.Context, id auth.Identity, room string) (store.Room, error) {
	st, err := s.authorize(ctx, id, room, authz.OpRoomRead)
	if err != nil {
		return store.Room{}, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.room, nil
}

// Join makes the caller a member of a public room (idempotent for any room
// they already belong to) and subscribes their live sessions. It returns the
// room's last seq, from which a client can sync.
func (s *Service) Join(ctx context.Context, id auth.Identity, room string) (int64, error) {
	st, err := s.authorize(ctx, id, room, authz.OpRoomJoin)
	if err != nil {
		return 0, err
	}
	if _, err := s.changeMembership(ctx, st, Membership{Room: room, User: id.UserID, Actor: id.UserID,
		Reason: pb.MembershipReason_MEMBERSHIP_REASON_SELF}, false); err != nil {
		return 0, err
	}
	return s.o.Store.LastSeq(ctx, room)
}

// AddMember adds user to room (room.invite). Only people of the room's org
// can be added, and direct rooms never grow (ChangeMembership).
func (s *Service) AddMember(ctx context.Context, id auth.Identity, room, user string) (store.User, error) {
	st, err := s.authorize(ctx, id, room, authz.OpRoomInvite)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.resolveUser(ctx, user)
	if err != nil {
		return store.User{}, err
	}
	if err := s.inScope(u.ID, st.room.SpaceID, st.org, user); err != nil {
		return store.User{}, err
	}
	if _, err := s.changeMembership(ctx, st, Membership{Room: room, User: u.ID, Actor: id.UserID,
		Reason: pb.MembershipReason_MEMBERSHIP_REASON_ADDED}, false); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// RemoveMember removes user from room: room.leave for oneself, room.kick
// for anyone else. Delivery to the removed user's sessions stops at once.
func (s *Service) RemoveMember(ctx context.Context, id auth.Identity, room, user string) error {
	act := authz.OpRoomKick
	if user == id.UserID {
		act = authz.OpRoomLeave
	}
	st, err := s.authorize(ctx, id, room, act)
	if err != nil {
		return err
	}
	reason := pb.MembershipReason_MEMBERSHIP_REASON_REMOVED
	if user == id.UserID {
		reason = pb.MembershipReason_MEMBERSHIP_REASON_SELF
	}
	left, err := s.changeMembership(ctx, st, Membership{Room: room, User: user, Actor: id.UserID, Reason: reason, Leave: true}, false)
	if err == nil && !left {
		err = Errorf(protocol.CodeNotFound, "user %q is not a member", user)
	}
	return err
}

// removeFromOrg takes user out of every room of org (they lost their last
// role in the org, taken by actor): the memberships go, and so do live
// deliveries. The caller has decided that actor may.
func (s *Service) removeFromOrg(ctx context.Context, actor, org, user string) error {
	rooms, err := s.o.Store.RoomsOfInOrg(ctx, user, org)
	if err != nil {
		return err
	}
	return s.leaveAll(ctx, rooms, Membership{User: user, Actor: actor,
		Reason: reasonOf(actor, pb.MembershipReason_MEMBERSHIP_REASON_ORG_REMOVAL), Leave: true})
}

// leaveAll applies the leave m to each of rooms, in order.
func (s *Service) leaveAll(ctx context.Context, rooms []string, m Membership) error {
	for _, room := range rooms {
		m.Room = room
		if _, err := s.ChangeMembership(ctx, m); err != nil {
			return fmt.Errorf("remove %s from room %s: %w", m.User, room, err)
		}
	}
	return nil
}

// Leave removes the caller from room.
func (s *Service) Leave(ctx context.Context, id auth.Identity, room string) error {
	return s.RemoveMember(ctx, id, room, id.UserID)
}

// Members lists a room's members for one of its members.
func (s *Service) Members(ctx context.Context, id auth.Identity, room string) ([]store.Member, error) {
	if _, err := s.authorize(ctx, id, room, authz.OpRoomMembersRead); err != nil {
		return nil, err
	}
	return s.o.Store.Members(ctx, room)
}

// MaxSync caps the events one sync reply carries; clients page with after=upto.
const MaxSync = 1000

// Sync returns the events of room with seq > after (at most limit), the seq
// they reach and whether more remain.
func (s *Service) Sync(ctx context.Context, id auth.Identity, room string, after int64, limit int) ([]store.Event, int64, bool, error) {
	if _, err := s.authorize(ctx, id, room, authz.OpMessageRead); err != nil {
		return nil, 0, false, err
	}
	if limit <= 0 {
		limit = 100
	}
	if limit > MaxSync {
		limit = MaxSync
	}
	if after < 0 {
		return nil, 0, false, Errorf(protocol.CodeBadRequest, "after must be ≥ 0")
	}
	last, err := s.o.Store.LastSeq(ctx, room)
	if err != nil {
		return nil, 0, false, err
	}
	if after > last {
		return nil, 0, false, Errorf(protocol.CodeBadRequest, "after=%d is beyond the room's last seq %d", after, last)
	}
	evs, err := s.o.Store.Events(ctx, room, after, limit)
	if err != nil {
		return nil, 0, false, err
	}
	upto := after
	if len(evs) > 0 {
		upto = evs[len(evs)-1].Seq
	}
	return evs, upto, upto < last, nil
}

// Typing tells the room's other sessions that the caller is typing. It is
// throttled to one frame per session and room every two seconds.
func (s *Service) Typing(ctx context.Context, id auth.Identity, session uint64, room string) error {
	if _, err := s.authorize(ctx, id, room, authz.OpRoomTyping); err != nil {
		return err
	}
	key := typingKey{session, room}
	now := time.Now()
	if v, ok := s.typing.Load(key); ok && now.Sub(v.(time.Time)) < 2*time.Second {
		return nil
	}
	s.typing.Store(key, now)
	ev := newEvent(&protocol.Frame{Type: protocol.TypeTyping, Room: room, User: id.UserID})
	ev.Session = session
	s.o.Broker.PublishRoom(ev, session)
	return nil
}

type typingKey struct {
	session uint64
	room    string
}

// Read records that the caller has read room up to seq and tells the room.
func (s *Service) Read(ctx context.Context, id auth.Identity, room string, seq int64) error {
	if _, err := s.authorize(ctx, id, room, authz.OpRoomMarkRead); err != nil {
		return err
	}
	last, err := s.o.Store.LastSeq(ctx, room)
	if err != nil {
		return err
	}
	if seq < 1 || seq > last {
		return Errorf(protocol.CodeBadRequest, "seq %d is outside the room's 1..%d", seq, last)
	}
	if err := s.allowAction(id.UserID, "read receipt"); err != nil {
		return err
	}
	if err := s.o.Store.MarkRead(ctx, room, id.UserID, seq); err != nil {
		return err
	}
	// A receipt is not a log event: seq is the read position, not the
	// event's place in the log.
	ev := newEvent(&protocol.Frame{Type: protocol.TypeReceipt, Room: room, User: id.UserID, Seq: seq})
	ev.Seq = 0
	s.o.Broker.PublishRoom(ev, 0)
	return nil
}

// SessionOpened subscribes a new session to its user's rooms that they may
// read and, when it is the user's first session, announces them online. It
// returns the rooms. The gateway calls it before the WebSocket upgrade
// completes, so a client is in its rooms from its first frame.
func (s *Service) SessionOpened(ctx context.Context, sub event.Subscriber) ([]string, error) {
	rooms, err := s.o.Store.RoomsOf(ctx, sub.UserID())
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(rooms))
	for _, r := range rooms {
		st, err := s.state(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		if !s.allowed(st, sub.UserID(), authz.OpMessageRead) {
			continue
		}
		ids = append(ids, r.ID)
		s.o.Broker.Subscribe(r.ID, sub)
	}
	if s.o.Broker.Connect(sub) == 1 {
		s.presence(sub.UserID(), ids, "online")
	}
	if s.o.Hooks != nil {
		s.o.Hooks.SessionOpened(sub.UserID(), sub.SessionID())
	}
	return ids, nil
}

// SessionClosed unsubscribes a session from every room it was in (however
// it got there) and, when it was the user's last, announces them offline in
// those rooms.
func (s *Service) SessionClosed(sub event.Subscriber) {
	if rooms, remaining := s.o.Broker.Disconnect(sub); remaining == 0 {
		s.presence(sub.UserID(), rooms, "offline")
	}
	if s.o.Hooks != nil {
		s.o.Hooks.SessionClosed(sub.UserID(), sub.SessionID())
	}
	s.typing.Range(func(k, _ any) bool {
		if k.(typingKey).session == sub.SessionID() {
			s.typing.Delete(k)
		}
		return true
	})
}

// presence sends one event to every other user's session on this node that
// shares a room with user, each session once however many rooms they share.
// The user's own sessions are skipped: they know.
func (s *Service) presence(user string, rooms []string, status string) {
	ev := newEvent(&protocol.Frame{Type: protocol.TypePresence, User: user, Status: status})
	seen := map[uint64]bool{}
	for _, r := range rooms {
		for _, sub := range s.o.Hub.RoomSessions(r) {
			if !seen[sub.SessionID()] && sub.UserID() != user {
				seen[sub.SessionID()] = true
				sub.Deliver(ev)
			}
		}
	}
}

// Online reports whether user has a live session on this node.
func (s *Service) Online(user string) bool { return s.o.Hub.Online(user) }

// HistoryPage is GET /v1/rooms/{id}/messages.
func (s *Service) History(ctx context.Context, id auth.Identity, q store.HistoryQuery) ([]protocol.Message, error) {
	if _, err := s.authorize(ctx, id, q.Room, authz.OpMessageRead); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > 200 {
		q.Limit = 50
	}
	ms, err := s.o.Store.History(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.render(ctx, ms)
}

// Search finds messages by words, only in rooms the caller belongs to.
func (s *Service) Search(ctx context.Context, id auth.Identity, q string, limit int) ([]protocol.Message, error) {
	if strings.TrimSpace(q) == "" {
		return nil, Errorf(protocol.CodeBadRequest, "q is required")
	}
	if len(q) > 256 {
		return nil, Errorf(protocol.CodeBadRequest, "q is longer than 256 bytes")
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	ms, err := s.o.Store.Search(ctx, id.UserID, q, limit)
	if err != nil {
		return nil, err
	}
	// The store searches the caller's rooms; the enforcer has the last word
	// (classification, deny rules) per room.
	out := ms[:0]
	for _, m := range ms {
		if st, err := s.state(ctx, m.RoomID); err == nil && s.allowed(st, id.UserID, authz.OpMessageRead) {
			out = append(out, m)
		}
	}
	return s.render(ctx, out)
}

func (s *Service) render(ctx context.Context, ms []store.Message) ([]protocol.Message, error) {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	reacts, err := s.o.Store.Reactions(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Message, len(ms))
	for i, m := range ms {
		pm := protocol.Message{ID: m.ID, Room: m.RoomID, Seq: m.Seq, From: m.SenderID, Text: m.Text, Thread: m.ThreadID,
			TS: m.CreatedAt, EditedTS: m.EditedAt, Deleted: m.DeletedAt != 0, Reactions: reacts[m.ID]}
		if m.Meta != "" {
			pm.Meta = []byte(m.Meta)
		}
		out[i] = pm
	}
	return out, nil
}

// Rooms lists the caller's rooms (those they may still see).
func (s *Service) Rooms(ctx context.Context, id auth.Identity) ([]store.Room, error) {
	rs, err := s.o.Store.RoomsOf(ctx, id.UserID)
	if err != nil {
		return nil, err
	}
	out := rs[:0]
	for _, r := range rs {
		if st, err := s.state(ctx, r.ID); err == nil && s.allowed(st, id.UserID, authz.OpRoomRead) {
			out = append(out, r)
		}
	}
	return out, nil
}

// PublicRooms lists the public rooms of a space the caller may list.
func (s *Service) PublicRooms(ctx context.Context, id auth.Identity, space string, limit int) ([]store.Room, error) {
	if space == "" {
		space = store.DefaultSpace
	}
	sp, err := s.o.Store.SpaceByID(ctx, space)
	if err != nil {
		return nil, Errorf(protocol.CodeNotFound, "space %q not found", space)
	}
	if !s.o.Authz.Decide(authz.Request{Sub: authz.User(id.UserID), Space: sp.ID, Org: sp.OrgID, Act: authz.OpRoomListPublic}) {
		return nil, Errorf(protocol.CodeNotFound, "space %q not found", space)
	}
	return s.o.Store.PublicRooms(ctx, sp.ID, limit)
}

// UpdateRoomRequest is PATCH /v1/rooms/{id}: nil fields stay.
type UpdateRoomRequest struct {
	Topic          *string `json:"topic,omitempty"`
	Classification *int    `json:"classification,omitempty"`
}

// UpdateRoom changes a room's topic or classification (room.update). A
// higher classification takes the room away from sessions whose clearance
// no longer suffices, at once.
func (s *Service) UpdateRoom(ctx context.Context, id auth.Identity, room string, req UpdateRoomRequest) (store.Room, error) {
	st, err := s.authorize(ctx, id, room, authz.OpRoomUpdate)
	if err != nil {
		return store.Room{}, err
	}
	st.mu.RLock()
	r := st.room
	st.mu.RUnlock()
	var changed []string
	if req.Topic != nil {
		if err := store.CheckText("topic", *req.Topic); err != nil {
			return store.Room{}, AsError(err)
		}
		if len(*req.Topic) > 500 {
			return store.Room{}, Errorf(protocol.CodeBadRequest, "topic is longer than 500 bytes")
		}
		if r.Topic != *req.Topic {
			changed = append(changed, "topic")
		}
		r.Topic = *req.Topic
	}
	if req.Classification != nil {
		if *req.Classification < 0 || *req.Classification > 100 {
			return store.Room{}, Errorf(protocol.CodeBadRequest, "classification %d: want 0–100", *req.Classification)
		}
		if r.Classification != *req.Classification {
			changed = append(changed, "classification")
		}
		r.Classification = *req.Classification
	}
	if err := s.o.Store.UpdateRoom(ctx, r.ID, r.Topic, r.Classification); err != nil {
		return store.Room{}, err
	}
	st.mu.Lock()
	st.room.Topic, st.room.Classification = r.Topic, r.Classification
	st.mu.Unlock()
	s.recheckRoom(room, "")
	if s.o.Hooks != nil && len(changed) > 0 {
		s.o.Hooks.RoomHasBeenUpdated(r, id.UserID, changed)
	}
	return r, nil
}

// SetMemberRole makes user's role in room role (member, guest, roomadmin or
// a custom role), adding them if needed. The caller needs roles.assign in
// the room and must hold the role they hand out (no escalation).
func (s *Service) SetMemberRole(ctx context.Context, id auth.Identity, room, user, role string) error {
	st, err := s.authorize(ctx, id, room, authz.OpRolesAssign)
	if err != nil {
		return err
	}
	return s.setMemberRole(ctx, st, authz.User(id.UserID), user, role)
}

// setMemberRole makes user's role in st's room role on behalf of actor (a
// subject), who already has roles.assign there and must hold role there
// itself (no escalation). The change is a membership (ChangeMembership):
// reason role, or provisioning when actor is a plugin.
func (s *Service) setMemberRole(ctx context.Context, st *roomState, actor, user, role string) error {
	room := st.room.ID
	if role == "owner" {
		role = authz.RoleRoomadmin
	}
	if err := s.o.Authz.CheckAssignment(authz.Assignment{Subject: authz.User(user), Role: role, Scope: "room:" + room}); err != nil {
		return Errorf(protocol.CodeBadRequest, "%v", err)
	}
	req := st.request("", "")
	if !s.o.Authz.MayDelegate(actor, role, req) {
		return Errorf(protocol.CodeForbidden, "you cannot hand out role %s: you do not hold it here", role)
	}
	u, err := s.resolveUser(ctx, user)
	if err != nil {
		return err
	}
	if err := s.inScope(u.ID, st.room.SpaceID, st.org, user); err != nil {
		return err
	}
	stored := role
	if role == authz.RoleRoomadmin {
		stored = "owner"
	}
	_, err = s.changeMembership(ctx, st, Membership{Room: room, User: u.ID, Actor: actorOf(actor),
		Reason: reasonOf(actor, pb.MembershipReason_MEMBERSHIP_REASON_ROLE), Role: stored}, false)
	return err
}
