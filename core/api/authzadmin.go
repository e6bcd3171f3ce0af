package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// registerAdmin mounts the authorization admin API. Every route is decided
// by the enforcer like any other: system-level ones for superadmins by
// default, assignments in the scope they touch.
func (a *API) registerAdmin(r fiber.Router) {
	a.sys(r, "GET", "/v1/admin/roles", authz.OpRolesRead, a.adminRoles)
	a.sys(r, "POST", "/v1/admin/roles", authz.OpRolesManage, a.adminAddRole)
	a.sys(r, "DELETE", "/v1/admin/roles/:name", authz.OpRolesManage, a.adminRemoveRole)
	a.sys(r, "GET", "/v1/admin/policies", authz.OpPoliciesRead, a.adminPolicies)
	a.sys(r, "POST", "/v1/admin/policies", authz.OpPoliciesManage, a.adminAddPolicy)
	a.sys(r, "DELETE", "/v1/admin/policies", authz.OpPoliciesManage, a.adminRemovePolicy)
	a.scoped(r, "GET", "/v1/admin/assignments", a.adminAssignments, authz.OpRolesAssignments)
	a.scoped(r, "PUT", "/v1/admin/assignments", a.adminAssign(true), authz.OpRolesAssign)
	a.scoped(r, "DELETE", "/v1/admin/assignments", a.adminAssign(false), authz.OpRolesAssign)
	a.sys(r, "PUT", "/v1/admin/users/:id/clearance", authz.OpUsersManage, a.adminSetClearance)
}

func (a *API) adminRoles(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"roles": a.o.Authz.Roles()})
}

func (a *API) adminAddRole(c *fiber.Ctx) error {
	var req authz.Role
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	if a.o.Authz.RoleExists(req.Name) {
		return a.Error(c, chat.Errorf(protocol.CodeConflict, "role %s exists", req.Name))
	}
	if err := a.o.Authz.AddRole(c.UserContext(), authz.Role{Name: req.Name, Inherits: req.Inherits}); err != nil {
		return a.Error(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(authz.Role{Name: req.Name, Inherits: req.Inherits})
}

func (a *API) adminRemoveRole(c *fiber.Ctx) error {
	if err := a.o.Authz.RemoveRole(c.UserContext(), c.Params("name")); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) adminPolicies(c *fiber.Ctx) error {
	ops := make([]string, len(authz.Ops))
	for i, o := range authz.Ops {
		ops[i] = o.Name
	}
	return c.JSON(fiber.Map{"policies": a.o.Authz.Policies(), "operations": ops, "model": authz.ModelText()})
}

func (a *API) adminAddPolicy(c *fiber.Ctx) error {
	var p authz.Policy
	if err := bind(c, &p); err != nil {
		return a.Error(c, err)
	}
	added, err := a.o.Authz.AddPolicy(c.UserContext(), p)
	if err != nil {
		return a.Error(c, err)
	}
	if !added {
		return a.Error(c, chat.Errorf(protocol.CodeConflict, "that policy exists"))
	}
	return c.Status(fiber.StatusCreated).JSON(p)
}

func (a *API) adminRemovePolicy(c *fiber.Ctx) error {
	var p authz.Policy
	if err := bind(c, &p); err != nil {
		return a.Error(c, err)
	}
	removed, err := a.o.Authz.RemovePolicy(c.UserContext(), p)
	if err != nil {
		return a.Error(c, err)
	}
	if !removed {
		return a.Error(c, chat.Errorf(protocol.CodeNotFound, "no such policy"))
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// adminAssignments lists the assignments of a scope (roles.assignments.read
// there) or, without scope, of the whole system (superadmin).
func (a *API) adminAssignments(c *fiber.Ctx) error {
	scope := c.Query("scope", authz.SysDomain)
	chain, err := a.o.Chat.Chain(c.UserContext(), scope)
	if err != nil {
		return a.Error(c, err)
	}
	req := chain
	req.Sub, req.Act = authz.User(identity(c).UserID), authz.OpRolesAssignments
	if !a.o.Authz.Decide(req) {
		return a.Error(c, chat.Errorf(protocol.CodeForbidden, "you may not list role assignments in %s", scope))
	}
	if scope == authz.SysDomain && c.Query("scope") == "" {
		scope = "" // everything
	}
	as := a.o.Authz.Assignments(c.Query("subject"), scope)
	if as == nil {
		as = []authz.Assignment{}
	}
	return c.JSON(fiber.Map{"assignments": as})
}

func (a *API) adminAssign(grant bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req authz.Assignment
		if err := bind(c, &req); err != nil {
			return a.Error(c, err)
		}
		sub, err := a.subjectOf(c.UserContext(), req.Subject)
		if err != nil {
			return a.Error(c, err)
		}
		req.Subject = sub
		if err := a.assign(c, req, grant); err != nil {
			return a.Error(c, err)
		}
		if !grant {
			return c.SendStatus(fiber.StatusNoContent)
		}
		return c.JSON(req)
	}
}

func (a *API) adminSetClearance(c *fiber.Ctx) error {
	var req clearanceBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	before, err := a.o.Store.UserByID(c.UserContext(), c.Params("id"))
	if err != nil {
		return a.Error(c, chat.Errorf(protocol.CodeNotFound, "user %q not found", c.Params("id")))
	}
	if err := a.o.Authz.SetClearance(c.UserContext(), before.ID, req.Clearance); err != nil {
		return a.Error(c, err)
	}
	if before.Clearance != req.Clearance {
		before.Clearance = req.Clearance
		a.o.Chat.UserUpdated(before, identity(c).UserID, "clearance")
	}
	return c.JSON(fiber.Map{"user": c.Params("id"), "clearance": req.Clearance})
}
