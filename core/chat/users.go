package chat

import (
	"context"
	"fmt"

	"github.com/unhidra/unhidra/core/store"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// Account changes reach the chat service after core/auth made them, from
// every door (registration, the admin API, identity and provisioning
// plugins): this is where rooms follow and plugins hear about them. actor is
// who made the change: "" for self-registration, a user id, or
// "plugin:<id>".

// UserCreated announces a new account (UserHasBeenCreated).
func (s *Service) UserCreated(u store.User, actor string) {
	if s.o.Hooks != nil {
		s.o.Hooks.UserHasBeenCreated(u, actor)
	}
}

// UserUpdated announces a changed account (UserHasBeenUpdated); changed
// names the fields: username, email, display_name, external_id, active
// (reactivation), role, clearance.
func (s *Service) UserUpdated(u store.User, actor string, changed ...string) {
	if s.o.Hooks != nil && len(changed) > 0 {
		s.o.Hooks.UserHasBeenUpdated(u, actor, changed)
	}
}

// UserDeactivated takes a deactivated account (its sessions already
// revoked) out of every room it was in — each through ChangeMembership,
// reason deactivated — and then announces it (UserHasBeenDeactivated).
// Reactivation does not bring the memberships back.
func (s *Service) UserDeactivated(ctx context.Context, u store.User, actor string) error {
	rooms, err := s.o.Store.RoomsOf(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("rooms of deactivated user %s: %w", u.ID, err)
	}
	ids := make([]string, len(rooms))
	for i, r := range rooms {
		ids[i] = r.ID
	}
	if err := s.leaveAll(ctx, ids, Membership{User: u.ID, Actor: actor,
		Reason: reasonOf(actor, pb.MembershipReason_MEMBERSHIP_REASON_DEACTIVATED), Leave: true}); err != nil {
		return err
	}
	if s.o.Hooks != nil {
		s.o.Hooks.UserHasBeenDeactivated(u, actor)
	}
	return nil
}
