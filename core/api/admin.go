package api

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

func (a *API) adminCreateUser(c *fiber.Ctx) error {
	var req adminUserBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	u, err := a.o.Auth.CreateUser(c.UserContext(), auth.RegisterRequest{Username: req.Username, Password: req.Password, Email: req.Email}, req.Role)
	if err != nil {
		return a.Error(c, err)
	}
	if err := a.o.Authz.UserCreated(c.UserContext(), u); err != nil {
		return a.Error(c, err)
	}
	a.o.Chat.UserCreated(u, identity(c).UserID)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"user": a.view(u, true)})
}

// adminSetActive deactivates (sessions revoked, every room left) or
// reactivates an account. Only a change of state is announced.
func (a *API) adminSetActive(active bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, actor := c.UserContext(), identity(c).UserID
		if !active && c.Params("id") == actor {
			return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "you cannot deactivate your own account"))
		}
		before, err := a.o.Store.UserByID(ctx, c.Params("id"))
		if err != nil {
			return a.Error(c, chat.Errorf(protocol.CodeNotFound, "user %q not found", c.Params("id")))
		}
		u, err := a.o.Auth.SetActive(ctx, before.ID, active)
		if err != nil {
			return a.Error(c, err)
		}
		switch wasActive := before.DeactivatedAt == 0; {
		case !active && wasActive:
			if err := a.o.Chat.UserDeactivated(ctx, u, actor); err != nil {
				return a.Error(c, err)
			}
		case active && !wasActive:
			a.o.Chat.UserUpdated(u, actor, "active")
		}
		return c.JSON(fiber.Map{"user": a.view(u, true)})
	}
}

func (a *API) adminListSessions(c *fiber.Ctx) error {
	ss, err := a.o.Auth.ListSessions(c.UserContext(), c.Params("id"), c.QueryBool("all"))
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"sessions": ss})
}

func (a *API) adminRevokeUserSessions(c *fiber.Ctx) error {
	if _, err := a.o.Store.UserByID(c.UserContext(), c.Params("id")); err != nil {
		return a.Error(c, err)
	}
	n, err := a.o.Auth.RevokeUserSessions(c.UserContext(), c.Params("id"), "", auth.RevokeAdmin)
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"revoked_sessions": n})
}

func (a *API) adminRevokeSession(c *fiber.Ctx) error {
	if err := a.o.Auth.RevokeSession(c.UserContext(), "", c.Params("id"), auth.RevokeAdmin); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) adminCreateInvite(c *fiber.Ctx) error {
	var req inviteBody
	if len(c.Body()) > 0 {
		if err := bind(c, &req); err != nil {
			return a.Error(c, err)
		}
	}
	if req.ExpiresIn < 0 {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "expires_in %d: must be positive seconds", req.ExpiresIn))
	}
	inv, err := a.o.Auth.CreateInvite(c.UserContext(), identity(c).UserID, auth.InviteRequest{MaxUses: req.MaxUses,
		TTL: time.Duration(req.ExpiresIn) * time.Second, Note: req.Note})
	if err != nil {
		return a.Error(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(inv)
}

func (a *API) adminListInvites(c *fiber.Ctx) error {
	is, err := a.o.Auth.ListInvites(c.UserContext())
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"invites": is})
}

func (a *API) adminRevokeInvite(c *fiber.Ctx) error {
	if err := a.o.Auth.RevokeInvite(c.UserContext(), c.Params("id")); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) adminKeys(c *fiber.Ctx) error {
	kid, alg := a.o.Auth.SigningKey()
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.JSON(fiber.Map{"signing_kid": kid, "alg": alg, "jwks": jsonRaw(a.o.Auth.JWKS())})
}

func (a *API) adminRotateKeys(c *fiber.Ctx) error {
	m, err := a.o.Auth.RotateKeys(c.UserContext())
	if err != nil {
		return a.Error(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(m)
}

// adminListDevices lists a user's devices (?all=1 includes revoked ones),
// for the console's People view: the sessions list names devices by id.
func (a *API) adminListDevices(c *fiber.Ctx) error {
	if _, err := a.o.Store.UserByID(c.UserContext(), c.Params("id")); err != nil {
		return a.Error(c, err)
	}
	ds, err := a.o.Auth.ListDevices(c.UserContext(), c.Params("id"), c.QueryBool("all"))
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"devices": ds})
}

// adminRevokeDevice revokes one of a user's devices and, with it, every
// session bound to it (their live WebSockets close with goodbye revoked).
func (a *API) adminRevokeDevice(c *fiber.Ctx) error {
	if err := a.o.Auth.RevokeDevice(c.UserContext(), c.Params("id"), c.Params("device")); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// adminSecurityEvents lists the security event stream (audit.read). With
// `after`, events come oldest first from there (to follow the stream);
// without it, newest first, below `before` when given (to browse). `type`
// and `actor` filter. The answer names the outbox's retained window:
// `oldest` (0 when empty) and `last` (the newest id ever assigned), and
// lists every event type (for the console's filter).
func (a *API) adminSecurityEvents(c *fiber.Ctx) error {
	after, err := parseSeq(c, "after")
	if err != nil {
		return a.Error(c, err)
	}
	before, err := parseSeq(c, "before")
	if err != nil {
		return a.Error(c, err)
	}
	if c.Query("after") != "" && c.Query("before") != "" {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "give after (oldest first) or before (newest first), not both"))
	}
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "limit %q: want 1–1000", v))
		}
		limit = n
	}
	typ := c.Query("type")
	if typ != "" && !secevent.Known(secevent.Type(typ)) {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "type %q is not a security event type (docs/plugins.md lists them)", typ))
	}
	q := store.SecurityQuery{After: after, Before: before, Newest: c.Query("after") == "", Limit: limit, Type: typ, Actor: c.Query("actor")}
	evs, err := a.o.Events.List(c.UserContext(), q)
	if err != nil {
		return a.Error(c, err)
	}
	oldest, last, err := a.o.Events.Bounds(c.UserContext())
	if err != nil {
		return a.Error(c, err)
	}
	types := make([]string, len(secevent.Types))
	for i, t := range secevent.Types {
		types[i] = string(t.Type)
	}
	return c.JSON(fiber.Map{"events": evs, "oldest": oldest, "last": last, "max": a.o.Events.Max(), "types": types})
}
