package chat

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// A block keeps a person from being put into rooms by someone else: by one
// user, or by anyone (store.BlockEveryone). It covers every way another
// person adds them — creating a room (of any kind, direct included) with
// them, adding them, giving them a role in a room they are not in — and
// never what they do themselves (join, leave).

// checkAdds refuses when one of users (other than actor) blocks actor.
// refs maps user ids to how the caller named them, for the message (nil:
// their usernames). Blocks name users; a plugin actor ("plugin:<id>") is
// refused only by a block of everyone.
func (s *Service) checkAdds(ctx context.Context, actor string, users []string, refs map[string]string) error {
	others := slices.DeleteFunc(slices.Clone(users), func(u string) bool { return u == actor })
	blocking, err := s.o.Store.Blocking(ctx, actor, others)
	if err != nil {
		return err
	}
	if len(blocking) > 0 {
		ref := refs[blocking[0]]
		if u, err := s.o.Store.UserByID(ctx, blocking[0]); ref == "" && err == nil {
			ref = u.Username
		} else if ref == "" {
			ref = blocking[0]
		}
		return Errorf(protocol.CodeForbidden, "user %q does not accept being added to rooms by you", ref)
	}
	return nil
}

// blockTarget turns a block reference (a user id, username or email, or
// "*") into what a block stores. Unblocking takes a bare id as is, so a
// block of an account that is gone can still be lifted.
func (s *Service) blockTarget(ctx context.Context, id auth.Identity, ref string, lifting bool) (string, error) {
	if ref == store.BlockEveryone {
		return ref, nil
	}
	if _, err := uuid.Parse(ref); err == nil && lifting {
		return ref, nil
	}
	u, err := s.resolveUser(ctx, ref)
	if err != nil {
		return "", err
	}
	if u.ID == id.UserID {
		return "", Errorf(protocol.CodeBadRequest, "you cannot block yourself")
	}
	return u.ID, nil
}

// Block stops ref (a user, or "*" for everyone) from putting the caller
// into rooms. Blocking again keeps the first block.
func (s *Service) Block(ctx context.Context, id auth.Identity, ref string) (store.Block, error) {
	target, err := s.blockTarget(ctx, id, ref, false)
	if err != nil {
		return store.Block{}, err
	}
	return s.o.Store.SetBlock(ctx, id.UserID, target)
}

// Unblock lifts a block; not_found when there was none.
func (s *Service) Unblock(ctx context.Context, id auth.Identity, ref string) error {
	target, err := s.blockTarget(ctx, id, ref, true)
	if err != nil {
		return err
	}
	ok, err := s.o.Store.RemoveBlock(ctx, id.UserID, target)
	if err == nil && !ok {
		return Errorf(protocol.CodeNotFound, "you do not block %q", ref)
	}
	return err
}

// Blocks lists the caller's blocks.
func (s *Service) Blocks(ctx context.Context, id auth.Identity) ([]store.Block, error) {
	return s.o.Store.Blocks(ctx, id.UserID)
}
