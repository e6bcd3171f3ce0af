package pluginhost

import (
	"context"
	"errors"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// Provisioning (SCIM-like plugins): accounts, their state and their roles.
// A plugin acts as the subject plugin:<id>, and the authorization layer
// decides its role changes as it decides a person's: it needs roles.assign
// in the scope and may only hand out or take away roles it holds there
// itself. A plugin holds the roles an administrator assigned to
// plugin:<id> (PUT /v1/admin/assignments), none by default.

// Page sizes of ListUsers.
const (
	defaultUserPage = 100
	maxUserPage     = 1000
)

func (a *hostAPI) subject() string { return authz.Plugin(a.m.id) }

// account loads a person's account (plugin bots are not provisioned).
func (a *hostAPI) account(ctx context.Context, id string) (store.User, error) {
	if id == "" {
		return store.User{}, status.Error(codes.InvalidArgument, "user id is required")
	}
	u, err := a.m.h.o.Store.UserByID(ctx, id)
	if err == nil && u.Role == "bot" {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, status.Errorf(codes.NotFound, "user %q not found", id)
	}
	return u, grpcErr(err)
}

// manageable loads an account the plugin may change: a superadmin's only
// when the plugin is a superadmin itself, since profile and state changes
// are a way into an account.
func (a *hostAPI) manageable(ctx context.Context, id string) (store.User, error) {
	u, err := a.account(ctx, id)
	if err != nil {
		return store.User{}, err
	}
	az := a.m.h.authz
	if az.Holds(authz.User(u.ID), authz.RoleSuperadmin, authz.SysDomain) && !az.Holds(a.subject(), authz.RoleSuperadmin, authz.SysDomain) {
		return store.User{}, status.Errorf(codes.PermissionDenied, "user %s is a superadmin; only a plugin holding superadmin may change that account", u.ID)
	}
	return u, nil
}

func (a *hostAPI) ListUsers(ctx context.Context, r *pb.ListUsersRequest) (*pb.ListUsersResponse, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	limit := int(r.Limit)
	switch {
	case limit < 0:
		return nil, status.Errorf(codes.InvalidArgument, "limit %d is negative", limit)
	case limit == 0:
		limit = defaultUserPage
	case limit > maxUserPage:
		limit = maxUserPage
	}
	us, err := st.ListUsersAfter(ctx, store.UserFilter{After: r.After, Limit: limit, Username: strings.ToLower(r.Username),
		Email: strings.ToLower(r.Email), ExternalID: r.ExternalId})
	if err != nil {
		return nil, grpcErr(err)
	}
	out := &pb.ListUsersResponse{Users: make([]*pb.User, len(us))}
	for i, u := range us {
		out.Users[i] = userPB(u)
	}
	return out, nil
}

func (a *hostAPI) CreateUser(ctx context.Context, r *pb.CreateUserRequest) (*pb.User, error) {
	svc, err := a.identity()
	if err != nil {
		return nil, err
	}
	u, err := svc.ProvisionUser(ctx, auth.ProvisionRequest{Username: r.Username, Email: r.Email, DisplayName: r.DisplayName,
		ExternalID: r.ExternalId, Active: r.Active})
	if err != nil {
		return nil, grpcErr(err)
	}
	if err := a.m.h.authz.UserCreated(ctx, u); err != nil {
		return nil, grpcErr(err)
	}
	if err := a.m.h.userLifecycle(ctx, pb.Hook_HOOK_USER_HAS_BEEN_CREATED, a.m, u, nil); err != nil {
		return nil, grpcErr(err)
	}
	return userPB(u), nil
}

func (a *hostAPI) UpdateUser(ctx context.Context, r *pb.UpdateUserRequest) (*pb.User, error) {
	svc, err := a.identity()
	if err != nil {
		return nil, err
	}
	u, err := a.manageable(ctx, r.Id)
	if err != nil {
		return nil, err
	}
	u, changed, err := svc.UpdateUser(ctx, u.ID, auth.UserUpdate{Fields: r.Fields, Username: r.Username, Email: r.Email,
		DisplayName: r.DisplayName, ExternalID: r.ExternalId})
	if err != nil {
		return nil, grpcErr(err)
	}
	if err := a.m.h.userLifecycle(ctx, pb.Hook_HOOK_USER_HAS_BEEN_UPDATED, a.m, u, changed); err != nil {
		return nil, grpcErr(err)
	}
	return userPB(u), nil
}

// SetUserActive deactivates an account the way an administrator does
// (auth.SetActive: its sessions and refresh tokens are revoked, which closes
// its live WebSockets at once) or reactivates it.
func (a *hostAPI) SetUserActive(ctx context.Context, r *pb.SetUserActiveRequest) (*pb.User, error) {
	svc, err := a.identity()
	if err != nil {
		return nil, err
	}
	u, err := a.manageable(ctx, r.Id)
	if err != nil {
		return nil, err
	}
	was := u.DeactivatedAt == 0
	u, err = svc.SetActive(ctx, u.ID, r.Active)
	if err != nil {
		return nil, grpcErr(err)
	}
	switch {
	case was && !r.Active:
		err = a.m.h.userLifecycle(ctx, pb.Hook_HOOK_USER_HAS_BEEN_DEACTIVATED, a.m, u, nil)
	case !was && r.Active:
		err = a.m.h.userLifecycle(ctx, pb.Hook_HOOK_USER_HAS_BEEN_UPDATED, a.m, u, []string{"active"})
	}
	if err != nil {
		return nil, grpcErr(err)
	}
	return userPB(u), nil
}

// scopeOf turns a RoleAssignment's scope and scope_id into an authz scope.
func scopeOf(kind, id string) (string, error) {
	switch kind {
	case "system", "sys":
		if id != "" {
			return "", status.Errorf(codes.InvalidArgument, "scope system takes no scope_id (got %q)", id)
		}
		return authz.SysDomain, nil
	case "org", "space", "room":
		if _, _, err := authz.ParseScope(kind + ":" + id); err != nil {
			return "", status.Error(codes.InvalidArgument, err.Error())
		}
		return kind + ":" + id, nil
	}
	return "", status.Errorf(codes.InvalidArgument, "scope %q: want system, org, space or room", kind)
}

func (a *hostAPI) changeRole(ctx context.Context, r *pb.RoleAssignment, grant bool) (*pb.Empty, error) {
	if a.m.h.chat == nil || a.m.h.authz == nil {
		return nil, status.Error(codes.Unavailable, "chat service not attached")
	}
	scope, err := scopeOf(r.Scope, r.ScopeId)
	if err != nil {
		return nil, err
	}
	u, err := a.account(ctx, r.UserId)
	if err != nil {
		return nil, err
	}
	as := authz.Assignment{Subject: authz.User(u.ID), Role: r.Role, Scope: scope}
	// Room roles are memberships: they go through the room's one path
	// (chat), which adds or removes the member and tells the room.
	// A change that happens is recorded where roles change (authz, chat);
	// a refused one is recorded here.
	if err := a.m.h.chat.ChangeRole(ctx, a.subject(), as, grant); err != nil {
		t := secevent.RoleAssigned
		if !grant {
			t = secevent.RoleRemoved
		}
		a.m.securityEvent(t, u.ID, secevent.Denied, map[string]string{"role": r.Role, "scope": scope, "reason": err.Error()})
		return nil, grpcErr(err)
	}
	return &pb.Empty{}, nil
}

func (a *hostAPI) AssignRole(ctx context.Context, r *pb.RoleAssignment) (*pb.Empty, error) {
	return a.changeRole(ctx, r, true)
}

func (a *hostAPI) RemoveRole(ctx context.Context, r *pb.RoleAssignment) (*pb.Empty, error) {
	return a.changeRole(ctx, r, false)
}

func (a *hostAPI) ListRoles(ctx context.Context, r *pb.ListRolesRequest) (*pb.ListRolesResponse, error) {
	if a.m.h.authz == nil {
		return nil, status.Error(codes.Unavailable, "authorization service not attached")
	}
	u, err := a.account(ctx, r.UserId)
	if err != nil {
		return nil, err
	}
	out := &pb.ListRolesResponse{}
	for _, as := range a.m.h.authz.Assignments(authz.User(u.ID), "") {
		kind, id, err := authz.ParseScope(as.Scope)
		if err != nil {
			continue
		}
		if kind == authz.SysDomain {
			kind = "system"
		}
		out.Assignments = append(out.Assignments, &pb.RoleAssignment{UserId: u.ID, Role: as.Role, Scope: kind, ScopeId: id})
	}
	return out, nil
}

func (a *hostAPI) CheckPermission(ctx context.Context, r *pb.CheckPermissionRequest) (*pb.CheckPermissionResponse, error) {
	if a.m.h.chat == nil || a.m.h.authz == nil {
		return nil, status.Error(codes.Unavailable, "authorization service not attached")
	}
	if !slices.ContainsFunc(authz.Ops, func(o authz.OpInfo) bool { return o.Name == r.Action }) {
		return nil, status.Errorf(codes.InvalidArgument, "action %q is not an operation (docs/authorization.md lists them)", r.Action)
	}
	u, err := a.account(ctx, r.UserId)
	if err != nil {
		return nil, err
	}
	var req authz.Request
	switch r.ObjectKind {
	case "system", "sys", "":
		if r.ObjectId != "" {
			return nil, status.Errorf(codes.InvalidArgument, "object kind system takes no object_id (got %q)", r.ObjectId)
		}
	case "org", "space", "room":
		if req, err = a.m.h.chat.Chain(ctx, r.ObjectKind+":"+r.ObjectId); err != nil {
			return nil, grpcErr(err)
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "object kind %q: want room, space, org or system", r.ObjectKind)
	}
	req.Sub, req.Act = authz.User(u.ID), r.Action
	// A deactivated account may do nothing, whatever its roles say.
	allowed := u.DeactivatedAt == 0 && a.m.h.authz.Decide(req)
	return &pb.CheckPermissionResponse{Allowed: allowed}, nil
}
