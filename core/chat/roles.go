package chat

import (
	"context"
	"strings"

	"github.com/unhidra/unhidra/core/authz"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Chain returns the authorization request skeleton of a scope ("sys",
// "org:<id>", "space:<id>" or "room:<id>"): its chain of ids and, for a
// room, its attributes. A scope that does not exist is not_found.
func (s *Service) Chain(ctx context.Context, scope string) (authz.Request, error) {
	kind, id, err := authz.ParseScope(scope)
	if err != nil {
		return authz.Request{}, Errorf(protocol.CodeBadRequest, "%v", err)
	}
	switch kind {
	case "org":
		if _, err := s.o.Store.OrgByID(ctx, id); err != nil {
			return authz.Request{}, Errorf(protocol.CodeNotFound, "org %q not found", id)
		}
		return authz.Request{Org: id}, nil
	case "space":
		sp, err := s.o.Store.SpaceByID(ctx, id)
		if err != nil {
			return authz.Request{}, Errorf(protocol.CodeNotFound, "space %q not found", id)
		}
		return authz.Request{Space: sp.ID, Org: sp.OrgID}, nil
	case "room":
		st, err := s.state(ctx, id)
		if err != nil {
			return authz.Request{}, err
		}
		return st.request("", ""), nil
	}
	return authz.Request{}, nil
}

// ChangeRole grants (grant) or removes an assignment on behalf of actor, a
// subject (user:<id>, plugin:<id>). The actor needs roles.assign in the
// scope and must hold the role there itself (authz.MayDelegate): nobody,
// person or plugin, hands out or takes away more than they hold. A room role
// is a membership: granting one adds the user to the room, removing it
// removes them. A space role is only for people of the space's org, and
// losing one's last role in an org means leaving its rooms.
func (s *Service) ChangeRole(ctx context.Context, actor string, as authz.Assignment, grant bool) error {
	chain, err := s.Chain(ctx, as.Scope)
	if err != nil {
		return err
	}
	if grant {
		if err := s.o.Authz.CheckAssignment(as); err != nil {
			return Errorf(protocol.CodeBadRequest, "%v", err)
		}
	}
	req := chain
	req.Sub, req.Act = actor, authz.OpRolesAssign
	if !s.o.Authz.Decide(req) {
		return Errorf(protocol.CodeForbidden, "%s may not assign roles in %s", actor, as.Scope)
	}
	if !s.o.Authz.MayDelegate(actor, as.Role, chain) {
		return Errorf(protocol.CodeForbidden, "%s cannot hand out or take away role %s in %s: it does not hold it there", actor, as.Role, as.Scope)
	}
	if chain.Room != "" {
		user, ok := strings.CutPrefix(as.Subject, authz.KindUser+":")
		if !ok {
			return Errorf(protocol.CodeBadRequest, "room roles are memberships of users, not of %s", as.Subject)
		}
		st, err := s.state(ctx, chain.Room)
		if err != nil {
			return err
		}
		if grant {
			return s.setMemberRole(ctx, st, actor, user, as.Role)
		}
		st.mu.RLock()
		stored, member := st.members[user]
		st.mu.RUnlock()
		if !member || authz.MemberRole(stored) != as.Role {
			return Errorf(protocol.CodeNotFound, "%s does not hold %s in %s", as.Subject, as.Role, as.Scope)
		}
		_, err = s.changeMembership(ctx, st, Membership{Room: chain.Room, User: user, Actor: actorOf(actor),
			Reason: reasonOf(actor, pb.MembershipReason_MEMBERSHIP_REASON_REMOVED), Leave: true}, false)
		return err
	}
	if grant {
		if chain.Org != "" && as.Scope != "org:"+chain.Org {
			// A space role is for people of the space's org.
			if !s.o.Authz.HoldsInChain(as.Subject, authz.RoleGuest, authz.Request{Org: chain.Org}) {
				return Errorf(protocol.CodeNotFound, "%s is not in org %s", as.Subject, chain.Org)
			}
		}
		return s.o.Authz.Assign(ctx, as)
	}
	ok, err := s.o.Authz.Unassign(ctx, as)
	if err != nil {
		return err
	}
	if !ok {
		return Errorf(protocol.CodeNotFound, "%s does not hold %s in %s", as.Subject, as.Role, as.Scope)
	}
	if user, isUser := strings.CutPrefix(as.Subject, authz.KindUser+":"); isUser && as.Scope == "org:"+chain.Org &&
		len(s.o.Authz.Assignments(as.Subject, as.Scope)) == 0 {
		return s.removeFromOrg(ctx, actorOf(actor), chain.Org, user)
	}
	return nil
}
