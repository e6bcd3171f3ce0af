package chat

import (
	"context"
	"strings"

	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Membership is one user entering or leaving one room, and why.
type Membership struct {
	Room, User string
	// Actor made the change: the user themselves (join, leave), another
	// user (add, kick, role, org removal, deactivation, creation), or
	// "plugin:<id>".
	Actor  string
	Reason pb.MembershipReason
	// Role is the member's stored role after entering ("member", "owner",
	// "guest", a custom role). "" keeps a member's role and makes a new
	// member a "member". Empty when Leave.
	Role  string
	Leave bool
}

// ChangeMembership is the one path by which a user enters or leaves a room,
// whatever the door: join, add, role assignment, room creation, org
// removal, deactivation, provisioning. It does not authorize: callers have
// decided that Actor may make the change. It does apply the rules every
// door shares, here and nowhere else:
//
//   - a direct room only ever holds the two people of its pair, and only
//     through its creation: nobody else can be added to it, by any path;
//   - a user who blocks Actor (or everyone) is not put into a room by Actor
//     (their own join is not an add);
//   - a user's own joins and leaves (reason self) count against their
//     action limit.
//
// Then, in this order, every time:
//
//  1. the store and the caches (room members, the enforcer's room roles);
//  2. subscriptions: on entering, the user's sessions that may read the
//     room are subscribed; on leaving, those receiving it are unsubscribed;
//  3. the event: `joined` to the room (the new member's sessions included),
//     or `left` to the user's sessions that were receiving the room and to
//     the room;
//  4. the security event of a change made by someone else (member.added,
//     member.removed) or of a room role given (role.assigned);
//  5. the hook: UserHasJoinedRoom / UserHasLeftRoom with actor, reason and
//     role.
//
// Entering a room one is already in with the same role changes nothing;
// with another role it changes the role only (no event, no hook), and the
// user's sessions lose the room if the new role may not read it. Leaving a
// room one is not in changes nothing. changed reports whether the member
// set changed.
//
// A change without an actor or a reason is refused (bad_request), and so
// is entering for an account that does not exist or is deactivated
// (not_found).
func (s *Service) ChangeMembership(ctx context.Context, m Membership) (changed bool, err error) {
	if m.Actor == "" || m.Reason == pb.MembershipReason_MEMBERSHIP_REASON_UNSPECIFIED {
		return false, Errorf(protocol.CodeBadRequest, "a membership change of user %q in room %q needs an actor and a reason", m.User, m.Room)
	}
	st, err := s.state(ctx, m.Room)
	if err != nil {
		return false, err
	}
	if !m.Leave {
		if _, err := s.resolveUser(ctx, m.User); err != nil {
			return false, err
		}
	}
	return s.changeMembership(ctx, st, m, false)
}

// errDirectFull refuses a third member of a direct room, whatever the path.
var errDirectFull = Errorf(protocol.CodeBadRequest, "direct rooms cannot take more members")

// changeMembership is ChangeMembership on a loaded room. stored says that
// the store already holds the change (room creation writes the room and its
// members in one transaction, after checking its members' blocks itself).
func (s *Service) changeMembership(ctx context.Context, st *roomState, m Membership, stored bool) (bool, error) {
	// One change at a time per room: the member check and the store write
	// must not interleave with another change of the same room.
	st.change.Lock()
	defer st.change.Unlock()
	st.mu.RLock()
	old, had := st.members[m.User]
	kind, pair := st.room.Kind, st.room.DirectKey
	st.mu.RUnlock()
	switch {
	case m.Leave:
		m.Role = ""
	case m.Role == "" && had:
		m.Role = old
	case m.Role == "":
		m.Role = "member"
	}

	switch {
	case m.Leave && !had:
		return false, nil
	case m.Leave:
		if err := s.allowSelf(m, "leave"); err != nil {
			return false, err
		}
		if !stored {
			if _, err := s.o.Store.RemoveMember(ctx, m.Room, m.User); err != nil {
				return false, err
			}
		}
		st.mu.Lock()
		delete(st.members, m.User)
		st.mu.Unlock()
		// The user's sessions that receive the room stop receiving it and
		// are told, each once; a session that already lost the room (an
		// authorization change told it) is not told twice. That happens
		// before the room roles go, so the enforcer's change listener
		// (recheckRoom) finds nobody left to tell.
		ev := newEvent(&protocol.Frame{Type: protocol.TypeLeft, Room: m.Room, User: m.User})
		for _, sub := range s.o.Hub.RoomSessions(m.Room) {
			if sub.UserID() == m.User {
				s.o.Broker.Unsubscribe(m.Room, sub)
				sub.Deliver(ev)
			}
		}
		s.o.Authz.RemoveRoomRoles(m.User, m.Room)
		s.o.Broker.PublishRoom(ev, 0)
		s.securityEvent(ctx, m, old)
		if s.o.Hooks != nil {
			s.o.Hooks.UserHasLeftRoom(m)
		}
		return true, nil
	case had && old == m.Role:
		s.subscribe(st, m.User) // e.g. a join after the room's access came back
		return false, nil
	case had:
		if err := s.o.Store.SetMember(ctx, store.Member{RoomID: m.Room, UserID: m.User, Role: m.Role, JoinedAt: store.Now()}); err != nil {
			return false, err
		}
		s.setMember(st, m.User, m.Role)
		s.recheckRoom(m.Room, authz.User(m.User)) // the new role may not read the room…
		s.subscribe(st, m.User)                   // …or may read it now
		s.securityEvent(ctx, m, old)
		return false, nil
	}
	if kind == store.KindDirect && (m.Reason != pb.MembershipReason_MEMBERSHIP_REASON_CREATED || !inPair(pair, m.User)) {
		return false, errDirectFull
	}
	if !stored {
		if m.Actor != m.User {
			if err := s.checkAdds(ctx, m.Actor, []string{m.User}, nil); err != nil {
				return false, err
			}
		}
		if err := s.allowSelf(m, "join"); err != nil {
			return false, err
		}
		if err := s.o.Store.SetMember(ctx, store.Member{RoomID: m.Room, UserID: m.User, Role: m.Role, JoinedAt: store.Now()}); err != nil {
			return false, err
		}
	}
	s.setMember(st, m.User, m.Role)
	s.subscribe(st, m.User)
	s.o.Broker.PublishRoom(newEvent(&protocol.Frame{Type: protocol.TypeJoined, Room: m.Room, User: m.User}), 0)
	s.securityEvent(ctx, m, "")
	if s.o.Hooks != nil {
		s.o.Hooks.UserHasJoinedRoom(m)
	}
	return true, nil
}

// allowSelf applies the user's action limit to their own join or leave.
func (s *Service) allowSelf(m Membership, what string) error {
	if m.Reason != pb.MembershipReason_MEMBERSHIP_REASON_SELF {
		return nil
	}
	return s.allowAction(m.User, what)
}

// subscribe subscribes user's live sessions to the room when the user may
// read it.
func (s *Service) subscribe(st *roomState, user string) {
	if s.allowed(st, user, authz.OpMessageRead) {
		st.mu.RLock()
		room := st.room.ID
		st.mu.RUnlock()
		s.o.Broker.SubscribeUser(room, user)
	}
}

// inPair reports whether user is one of the two people of a direct room's
// key ("a:b").
func inPair(key *string, user string) bool {
	if key == nil {
		return false
	}
	a, b, _ := strings.Cut(*key, ":")
	return user == a || user == b
}

// actorOf turns an authorization subject into a membership actor: a user's
// id, or "plugin:<id>" as it is.
func actorOf(subject string) string {
	return strings.TrimPrefix(subject, authz.KindUser+":")
}

// reasonOf is the reason of a change actor makes for reason: a plugin's
// changes are provisioning, whatever they are.
func reasonOf(actor string, reason pb.MembershipReason) pb.MembershipReason {
	if strings.HasPrefix(actor, authz.KindPlugin+":") {
		return pb.MembershipReason_MEMBERSHIP_REASON_PROVISIONING
	}
	return reason
}

// securityEvent records a membership change made by someone else than the
// member (one's own join or leave is not an admin action): a room role given
// (role.assigned: an existing member's new role, or a role assignment that
// made them a member), else the member added or removed (member.added,
// member.removed). old is the member's role before.
func (s *Service) securityEvent(ctx context.Context, m Membership, old string) {
	ev := secevent.Event{Actor: m.Actor, Target: m.User, TargetKind: "user", Outcome: secevent.Success,
		Details: map[string]string{"room": m.Room, "reason": reasonName(m.Reason)}}
	switch {
	case !m.Leave && (old != "" || m.Reason == pb.MembershipReason_MEMBERSHIP_REASON_ROLE):
		ev.Type, ev.Target, ev.TargetKind = secevent.RoleAssigned, authz.User(m.User), "subject"
		ev.Details = map[string]string{"role": authz.MemberRole(m.Role), "scope": "room:" + m.Room}
	case m.Actor == m.User:
		return
	case m.Leave:
		ev.Type = secevent.MemberRemoved
		ev.Details["role"] = old
	default:
		ev.Type = secevent.MemberAdded
		ev.Details["role"] = m.Role
	}
	s.o.Events.Emit(ctx, ev)
}

// reasonName is a reason as events show it: "added", "org_removal".
func reasonName(r pb.MembershipReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "MEMBERSHIP_REASON_"))
}
