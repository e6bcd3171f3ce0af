package api

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Public marks a route that needs no identity (auth endpoints, JWKS).
const Public = "public"

// Route is a registered REST route and the operations the enforcer decides
// for it. A route with a system-level operation is decided by middleware
// before its handler; the others are decided where their scope (org, space,
// room) is known: in decideOrg or in the chat service.
type Route struct {
	Method string
	Path   string
	Ops    []string
}

// Routes lists every route Register mounted.
func (a *API) Routes() []Route { return slices.Clone(a.routes) }

func (a *API) add(r fiber.Router, method, path string, ops []string, hs ...fiber.Handler) {
	a.routes = append(a.routes, Route{method, path, ops})
	r.Add(method, path, hs...)
}

// public mounts a route that needs no identity.
func (a *API) public(r fiber.Router, method, path string, hs ...fiber.Handler) {
	a.add(r, method, path, []string{Public}, hs...)
}

// sys mounts a route whose operation is system-wide: the enforcer decides
// it before the handlers run.
func (a *API) sys(r fiber.Router, method, path, op string, hs ...fiber.Handler) {
	a.add(r, method, path, []string{op}, append([]fiber.Handler{a.requireAuth, a.can(op)}, hs...)...)
}

// org mounts a route on /…/orgs/:id whose operation is decided in that org.
func (a *API) org(r fiber.Router, method, path, op string, h fiber.Handler) {
	a.add(r, method, path, []string{op}, a.requireAuth, func(c *fiber.Ctx) error {
		if err := a.decideOrg(c, c.Params("id"), op); err != nil {
			return a.Error(c, err)
		}
		return c.Next()
	}, h)
}

// scoped mounts a route whose handler decides ops once it knows the scope
// (the chat service for rooms, decideOrg for orgs and spaces).
func (a *API) scoped(r fiber.Router, method, path string, h fiber.Handler, ops ...string) {
	a.add(r, method, path, ops, a.requireAuth, h)
}

// can decides a system-level operation for the caller.
func (a *API) can(op string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !a.o.Authz.Decide(authz.Request{Sub: authz.User(identity(c).UserID), Act: op}) {
			return a.Error(c, chat.Errorf(protocol.CodeForbidden, "you may not %s", op))
		}
		return c.Next()
	}
}

// decideOrg decides op in org for the caller. Someone who may not even read
// the org cannot tell it from a missing one.
func (a *API) decideOrg(c *fiber.Ctx, org, op string) error {
	sub := authz.User(identity(c).UserID)
	if _, err := uuid.Parse(org); err != nil {
		return chat.Errorf(protocol.CodeNotFound, "org %q not found", org)
	}
	if a.o.Authz.Decide(authz.Request{Sub: sub, Org: org, Act: op}) {
		if _, err := a.o.Store.OrgByID(c.UserContext(), org); err != nil {
			return chat.Errorf(protocol.CodeNotFound, "org %q not found", org)
		}
		return nil
	}
	if a.o.Authz.Decide(authz.Request{Sub: sub, Org: org, Act: authz.OpOrgRead}) {
		return chat.Errorf(protocol.CodeForbidden, "you may not %s in org %s", op, org)
	}
	return chat.Errorf(protocol.CodeNotFound, "org %q not found", org)
}

// ---- orgs ----

// orgView is the public shape of an org.
type orgView struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
}

func orgOut(o store.Org) orgView { return orgView{o.ID, o.Name, o.CreatedAt} }

func (a *API) listOrgs(c *fiber.Ctx) error {
	sub := authz.User(identity(c).UserID)
	var ids []string
	if !a.o.Authz.Decide(authz.Request{Sub: sub, Act: authz.OpOrgCreate}) { // a superadmin sees all
		ids = []string{}
		for _, d := range a.o.Authz.Domains(sub) {
			if id, ok := strings.CutPrefix(d, "org:"); ok {
				ids = append(ids, id)
			}
		}
	}
	os, err := a.o.Store.OrgsByID(c.UserContext(), ids)
	if err != nil {
		return a.Error(c, err)
	}
	out := make([]orgView, len(os))
	for i, o := range os {
		out[i] = orgOut(o)
	}
	return c.JSON(fiber.Map{"orgs": out})
}

func (a *API) createOrg(c *fiber.Ctx) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 100 {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "name must have 1–100 bytes"))
	}
	o := store.Org{ID: uuid.NewString(), Name: name, CreatedAt: store.Now()}
	if err := a.o.Store.CreateOrg(c.UserContext(), &o); err != nil {
		return a.Error(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(orgOut(o))
}

func (a *API) getOrg(c *fiber.Ctx) error {
	o, err := a.o.Store.OrgByID(c.UserContext(), c.Params("id"))
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(orgOut(o))
}

func (a *API) listOrgMembers(c *fiber.Ctx) error {
	as := a.o.Authz.Assignments("", "org:"+c.Params("id"))
	if as == nil {
		as = []authz.Assignment{}
	}
	return c.JSON(fiber.Map{"members": as})
}

// subjectOf turns a path or body reference (user id, username, or a
// kind:id subject) into a subject name.
func (a *API) subjectOf(ctx context.Context, ref string) (string, error) {
	if id, ok := strings.CutPrefix(ref, authz.KindUser+":"); ok {
		ref = id // a user subject: check the account like a bare id
	} else if authz.IsSubject(ref) {
		return ref, nil
	}
	u, err := a.o.Store.UserByID(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		u, err = a.o.Store.UserByLogin(ctx, ref)
	}
	if err != nil || u.DeactivatedAt != 0 {
		return "", chat.Errorf(protocol.CodeNotFound, "user %q not found", ref)
	}
	return authz.User(u.ID), nil
}

// chainOf returns the request skeleton (scope chain) of a scope string, and
// checks the scope exists.
func (a *API) chainOf(ctx context.Context, scope string) (authz.Request, error) {
	kind, id, err := authz.ParseScope(scope)
	if err != nil {
		return authz.Request{}, chat.Errorf(protocol.CodeBadRequest, "%v", err)
	}
	switch kind {
	case "org":
		if _, err := a.o.Store.OrgByID(ctx, id); err != nil {
			return authz.Request{}, chat.Errorf(protocol.CodeNotFound, "org %q not found", id)
		}
		return authz.Request{Org: id}, nil
	case "space":
		sp, err := a.o.Store.SpaceByID(ctx, id)
		if err != nil {
			return authz.Request{}, chat.Errorf(protocol.CodeNotFound, "space %q not found", id)
		}
		return authz.Request{Space: sp.ID, Org: sp.OrgID}, nil
	case "room":
		r, err := a.o.Store.RoomByID(ctx, id)
		if err != nil {
			return authz.Request{}, chat.Errorf(protocol.CodeNotFound, "room %q not found", id)
		}
		sp, err := a.o.Store.SpaceByID(ctx, r.SpaceID)
		if err != nil {
			return authz.Request{}, err
		}
		return authz.Request{Room: r.ID, Space: sp.ID, Org: sp.OrgID, Env: authz.Env{Kind: r.Kind, Classification: r.Classification}}, nil
	}
	return authz.Request{}, nil
}

// assign grants or revokes an assignment on behalf of the caller: they need
// roles.assign in the scope, and must themselves hold the role they hand out
// or take away there (nobody escalates beyond their own role).
func (a *API) assign(c *fiber.Ctx, as authz.Assignment, grant bool) error {
	ctx := c.UserContext()
	actor := authz.User(identity(c).UserID)
	chain, err := a.chainOf(ctx, as.Scope)
	if err != nil {
		return err
	}
	if grant {
		if err := a.o.Authz.CheckAssignment(as); err != nil {
			return err
		}
	}
	req := chain
	req.Sub, req.Act = actor, authz.OpRolesAssign
	if !a.o.Authz.Decide(req) {
		return chat.Errorf(protocol.CodeForbidden, "you may not assign roles in %s", as.Scope)
	}
	if !a.o.Authz.MayDelegate(actor, as.Role, chain) {
		return chat.Errorf(protocol.CodeForbidden, "you cannot hand out or take away role %s in %s: you do not hold it there", as.Role, as.Scope)
	}
	if grant {
		if strings.HasPrefix(as.Scope, "room:") {
			return a.o.Chat.SetMemberRole(ctx, identity(c), chain.Room, strings.TrimPrefix(as.Subject, "user:"), as.Role)
		}
		if chain.Org != "" && as.Scope != "org:"+chain.Org {
			// A space role is for people of the space's org.
			if !a.o.Authz.HoldsInChain(as.Subject, authz.RoleGuest, authz.Request{Org: chain.Org}) {
				return chat.Errorf(protocol.CodeNotFound, "%s is not in org %s", as.Subject, chain.Org)
			}
		}
		return a.o.Authz.Assign(ctx, as)
	}
	if strings.HasPrefix(as.Scope, "room:") {
		return a.o.Chat.RemoveMember(ctx, identity(c), chain.Room, strings.TrimPrefix(as.Subject, "user:"))
	}
	ok, err := a.o.Authz.Unassign(ctx, as)
	if err == nil && !ok {
		return chat.Errorf(protocol.CodeNotFound, "%s does not hold %s in %s", as.Subject, as.Role, as.Scope)
	}
	return err
}

func (a *API) setOrgMember(c *fiber.Ctx) error {
	var req struct {
		Role string `json:"role"`
	}
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	sub, err := a.subjectOf(c.UserContext(), c.Params("user"))
	if err != nil {
		return a.Error(c, err)
	}
	if req.Role == "" {
		req.Role = authz.RoleMember
	}
	scope := "org:" + c.Params("id")
	// One role per org: replace what the subject held.
	old := a.o.Authz.Assignments(sub, scope)
	if err := a.assign(c, authz.Assignment{Subject: sub, Role: req.Role, Scope: scope}, true); err != nil {
		return a.Error(c, err)
	}
	for _, o := range old {
		if o.Role != req.Role {
			if err := a.assign(c, o, false); err != nil {
				return a.Error(c, err)
			}
		}
	}
	return c.JSON(authz.Assignment{Subject: sub, Role: req.Role, Scope: scope})
}

func (a *API) removeOrgMember(c *fiber.Ctx) error {
	sub, err := a.subjectOf(c.UserContext(), c.Params("user"))
	if err != nil {
		return a.Error(c, err)
	}
	old := a.o.Authz.Assignments(sub, "org:"+c.Params("id"))
	if len(old) == 0 {
		return a.Error(c, chat.Errorf(protocol.CodeNotFound, "%s is not a member of org %s", sub, c.Params("id")))
	}
	for _, o := range old {
		if err := a.assign(c, o, false); err != nil {
			return a.Error(c, err)
		}
	}
	// Leaving the org means leaving its rooms too.
	if user, ok := strings.CutPrefix(sub, authz.KindUser+":"); ok {
		if err := a.o.Chat.RemoveFromOrg(c.UserContext(), identity(c).UserID, c.Params("id"), user); err != nil {
			return a.Error(c, err)
		}
	}
	return c.SendStatus(fiber.StatusNoContent)
}
