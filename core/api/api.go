// Package api serves the REST surface: /v1/auth, rooms, history, search,
// users and spaces. Every handler goes through the same chat service as the
// WebSocket gateway, so durability and checks are identical.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/metrics"
	"github.com/unhidra/unhidra/core/pluginhost"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Options configures the API.
type Options struct {
	Chat    *chat.Service
	Auth    *auth.Service
	Authz   *authz.Enforcer
	Store   *store.Store
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// WriteTimeout bounds how long a POST waits for its commit (default 10s).
	WriteTimeout time.Duration
	// Limits are the per-address limits of the auth endpoints (nil: none).
	Limits Limits
	// ClientIP returns a request's client address (default: the TCP peer).
	ClientIP func(*fiber.Ctx) string
	// Events is the security event stream: rate-limit refusals go to it,
	// and GET /v1/admin/security-events reads it (nil: no such route).
	Events *secevent.Outbox
	// LoginMethods lists the sign-in buttons plugins registered (nil: none).
	LoginMethods func() []pluginhost.LoginMethod
}

// Limits are per-client-address limiters for the auth endpoints; a nil
// limiter allows everything.
type Limits struct {
	Login    *ratelimit.Limiter // POST /v1/auth/login
	Register *ratelimit.Limiter // POST /v1/auth/register
	// IP covers the other auth endpoints (refresh, logout, password); the
	// gateway shares it for WebSocket handshakes.
	IP *ratelimit.Limiter
}

// API holds the REST handlers.
type API struct {
	o      Options
	routes []Route
}

// New returns the API.
func New(o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.ClientIP == nil {
		o.ClientIP = func(c *fiber.Ctx) string { return c.IP() }
	}
	return &API{o: o}
}

const identityKey = "unhidra.identity"

// Register mounts every route on r. Each route names the operation(s) the
// enforcer decides for it (routes.go); Routes lists them for the coverage
// test and docs/authorization.md.
func (a *API) Register(r fiber.Router) {
	lim := a.o.Limits
	a.public(r, "GET", "/.well-known/jwks.json", a.jwks)
	a.public(r, "POST", "/v1/auth/register", a.limit(lim.Register, "registration"), a.register)
	a.public(r, "POST", "/v1/auth/login", a.limit(lim.Login, "login"), a.login)
	a.public(r, "GET", "/v1/auth/methods", a.loginMethods)
	a.public(r, "POST", "/v1/auth/exchange", a.limit(lim.Login, "login"), a.exchange)
	a.public(r, "POST", "/v1/auth/mfa/complete", a.limit(lim.Login, "login"), a.completeMFA)
	a.public(r, "POST", "/v1/auth/refresh", a.limit(lim.IP, "auth"), a.refresh)
	a.public(r, "POST", "/v1/auth/logout", a.limit(lim.IP, "auth"), a.logout)
	a.sys(r, "POST", "/v1/auth/password", authz.OpSelfManage, a.limit(lim.IP, "auth"), a.changePassword)

	a.sys(r, "GET", "/v1/me", authz.OpSelfRead, a.me)
	a.sys(r, "GET", "/v1/sessions", authz.OpSelfRead, a.listSessions)
	a.sys(r, "DELETE", "/v1/sessions/:id", authz.OpSelfManage, a.revokeSession)
	a.sys(r, "GET", "/v1/devices", authz.OpSelfRead, a.listDevices)
	a.sys(r, "POST", "/v1/devices", authz.OpSelfManage, a.registerDevice)
	a.sys(r, "PATCH", "/v1/devices/:id", authz.OpSelfManage, a.updateDevice)
	a.sys(r, "DELETE", "/v1/devices/:id", authz.OpSelfManage, a.revokeDevice)

	a.sys(r, "GET", "/v1/me/blocks", authz.OpSelfRead, a.listBlocks)
	a.sys(r, "PUT", "/v1/me/blocks/:user", authz.OpSelfManage, a.block)
	a.sys(r, "DELETE", "/v1/me/blocks/:user", authz.OpSelfManage, a.unblock)

	a.sys(r, "GET", "/v1/users", authz.OpUserRead, a.listUsers)
	a.sys(r, "GET", "/v1/users/:id", authz.OpUserRead, a.getUser)

	a.sys(r, "GET", "/v1/orgs", authz.OpOrgList, a.listOrgs)
	a.sys(r, "POST", "/v1/orgs", authz.OpOrgCreate, a.createOrg)
	a.org(r, "GET", "/v1/orgs/:id", authz.OpOrgRead, a.getOrg)
	a.org(r, "GET", "/v1/orgs/:id/members", authz.OpOrgMembersRead, a.listOrgMembers)
	a.org(r, "PUT", "/v1/orgs/:id/members/:user", authz.OpOrgMembersManage, a.setOrgMember)
	a.org(r, "DELETE", "/v1/orgs/:id/members/:user", authz.OpOrgMembersManage, a.removeOrgMember)

	a.scoped(r, "GET", "/v1/spaces", a.listSpaces, authz.OpSpaceList)
	a.scoped(r, "POST", "/v1/spaces", a.createSpace, authz.OpSpaceCreate)
	a.scoped(r, "GET", "/v1/spaces/:id", a.getSpace, authz.OpSpaceRead)

	a.scoped(r, "GET", "/v1/rooms", a.listRooms, authz.OpRoomListMine, authz.OpRoomListPublic)
	a.scoped(r, "POST", "/v1/rooms", a.createRoom, authz.OpRoomCreate)
	a.scoped(r, "GET", "/v1/rooms/:id", a.getRoom, authz.OpRoomRead)
	a.scoped(r, "PATCH", "/v1/rooms/:id", a.updateRoom, authz.OpRoomUpdate)
	a.scoped(r, "POST", "/v1/rooms/:id/join", a.joinRoom, authz.OpRoomJoin)
	a.scoped(r, "POST", "/v1/rooms/:id/leave", a.leaveRoom, authz.OpRoomLeave)
	a.scoped(r, "GET", "/v1/rooms/:id/members", a.listMembers, authz.OpRoomMembersRead)
	a.scoped(r, "POST", "/v1/rooms/:id/members", a.addMember, authz.OpRoomInvite)
	a.scoped(r, "PUT", "/v1/rooms/:id/members/:user", a.setMemberRole, authz.OpRolesAssign)
	a.scoped(r, "DELETE", "/v1/rooms/:id/members/:user", a.removeMember, authz.OpRoomKick, authz.OpRoomLeave)
	a.scoped(r, "GET", "/v1/rooms/:id/messages", a.history, authz.OpMessageRead)
	a.scoped(r, "POST", "/v1/rooms/:id/messages", a.postMessage, authz.OpMessageSend)
	a.scoped(r, "PATCH", "/v1/rooms/:id/messages/:mid", a.editMessage, authz.OpMessageEdit, authz.OpMessageEditAny)
	a.scoped(r, "DELETE", "/v1/rooms/:id/messages/:mid", a.deleteMessage, authz.OpMessageDelete, authz.OpMessageDelAny)
	a.scoped(r, "GET", "/v1/rooms/:id/messages/:mid/edits", a.messageEdits, authz.OpMessageRead)
	a.scoped(r, "PUT", "/v1/rooms/:id/messages/:mid/reactions/:emoji", a.react(true), authz.OpMessageReact)
	a.scoped(r, "DELETE", "/v1/rooms/:id/messages/:mid/reactions/:emoji", a.react(false), authz.OpMessageReact)
	a.sys(r, "GET", "/v1/search", authz.OpSearch, a.search)

	a.sys(r, "POST", "/v1/admin/users", authz.OpUsersManage, a.adminCreateUser)
	a.sys(r, "POST", "/v1/admin/users/:id/deactivate", authz.OpUsersManage, a.adminSetActive(false))
	a.sys(r, "POST", "/v1/admin/users/:id/reactivate", authz.OpUsersManage, a.adminSetActive(true))
	a.sys(r, "GET", "/v1/admin/users/:id/sessions", authz.OpUsersManage, a.adminListSessions)
	a.sys(r, "POST", "/v1/admin/users/:id/revoke-sessions", authz.OpUsersManage, a.adminRevokeUserSessions)
	a.sys(r, "DELETE", "/v1/admin/sessions/:id", authz.OpUsersManage, a.adminRevokeSession)
	a.sys(r, "GET", "/v1/admin/users/:id/devices", authz.OpUsersManage, a.adminListDevices)
	a.sys(r, "DELETE", "/v1/admin/users/:id/devices/:device", authz.OpUsersManage, a.adminRevokeDevice)
	a.sys(r, "POST", "/v1/admin/invites", authz.OpInvitesManage, a.adminCreateInvite)
	a.sys(r, "GET", "/v1/admin/invites", authz.OpInvitesManage, a.adminListInvites)
	a.sys(r, "DELETE", "/v1/admin/invites/:id", authz.OpInvitesManage, a.adminRevokeInvite)
	a.sys(r, "GET", "/v1/admin/keys", authz.OpKeysManage, a.adminKeys)
	a.sys(r, "POST", "/v1/admin/keys/rotate", authz.OpKeysManage, a.adminRotateKeys)
	if a.o.Events != nil {
		a.sys(r, "GET", "/v1/admin/security-events", authz.OpAuditRead, a.adminSecurityEvents)
	}
	a.registerAdmin(r)
}

// Error writes err as a JSON error body with the status for its code.
func (a *API) Error(c *fiber.Ctx, err error) error {
	var (
		e      *chat.Error
		locked *auth.LockedError
	)
	switch {
	case errors.As(err, &locked):
		e = chat.RateLimited(locked.RetryAfter, "%s", locked.Error())
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrInvalidToken), errors.Is(err, auth.ErrNotConfirmed):
		e = &chat.Error{Code: protocol.CodeUnauthorized, Message: err.Error()}
	case errors.Is(err, auth.ErrTaken):
		e = &chat.Error{Code: protocol.CodeConflict, Message: err.Error()}
	case errors.Is(err, auth.ErrRegistrationClosed), errors.Is(err, auth.ErrInviteRequired), errors.Is(err, auth.ErrWrongPassword):
		e = &chat.Error{Code: protocol.CodeForbidden, Message: err.Error()}
	case errors.Is(err, auth.ErrNotFound):
		e = &chat.Error{Code: protocol.CodeNotFound, Message: err.Error()}
	case errors.Is(err, authz.ErrInvalid):
		e = &chat.Error{Code: protocol.CodeBadRequest, Message: err.Error()}
	case errors.Is(err, authz.ErrNotFound):
		e = &chat.Error{Code: protocol.CodeNotFound, Message: err.Error()}
	default:
		var ie *auth.InputError
		var fe *fiber.Error
		if errors.As(err, &ie) {
			e = &chat.Error{Code: protocol.CodeBadRequest, Message: ie.Msg}
		} else if errors.As(err, &fe) {
			e = &chat.Error{Code: codeForStatus(fe.Code), Message: fe.Message}
		} else {
			e = chat.AsError(err)
		}
	}
	if e.Code == protocol.CodeInternal {
		a.o.Logger.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if a.o.Metrics != nil {
		a.o.Metrics.ErrorsSent.WithLabelValues(e.Code).Inc()
	}
	if e.RetryAfterMs > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt((e.RetryAfterMs+999)/1000, 10))
	}
	return c.Status(StatusFor(e.Code)).JSON(protocol.ErrorBody{Code: e.Code, Message: e.Message, RetryAfterMs: e.RetryAfterMs})
}

// StatusFor maps a protocol error code to an HTTP status.
func StatusFor(code string) int {
	switch code {
	case protocol.CodeBadRequest:
		return fiber.StatusBadRequest
	case protocol.CodeUnauthorized:
		return fiber.StatusUnauthorized
	case protocol.CodeForbidden:
		return fiber.StatusForbidden
	case protocol.CodeNotFound:
		return fiber.StatusNotFound
	case protocol.CodeRateLimited:
		return fiber.StatusTooManyRequests
	case protocol.CodeTooLarge:
		return fiber.StatusRequestEntityTooLarge
	case protocol.CodeConflict:
		return fiber.StatusConflict
	case protocol.CodeUnavailable:
		return fiber.StatusServiceUnavailable
	}
	return fiber.StatusInternalServerError
}

func codeForStatus(st int) string {
	switch st {
	case fiber.StatusBadRequest, fiber.StatusMethodNotAllowed, fiber.StatusUnsupportedMediaType:
		return protocol.CodeBadRequest
	case fiber.StatusUnauthorized:
		return protocol.CodeUnauthorized
	case fiber.StatusForbidden:
		return protocol.CodeForbidden
	case fiber.StatusNotFound:
		return protocol.CodeNotFound
	case fiber.StatusTooManyRequests:
		return protocol.CodeRateLimited
	case fiber.StatusRequestEntityTooLarge:
		return protocol.CodeTooLarge
	case fiber.StatusConflict:
		return protocol.CodeConflict
	case fiber.StatusServiceUnavailable:
		return protocol.CodeUnavailable
	}
	return protocol.CodeInternal
}

func (a *API) requireAuth(c *fiber.Ctx) error {
	tok, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok {
		return a.Error(c, chat.Errorf(protocol.CodeUnauthorized, "missing bearer token"))
	}
	id, err := a.o.Auth.Authenticate(c.UserContext(), tok)
	if err != nil {
		return a.Error(c, chat.Errorf(protocol.CodeUnauthorized, "%v", err))
	}
	c.Locals(identityKey, id)
	// Whatever the request changes is acted by this user (security events).
	c.SetUserContext(secevent.WithActor(c.UserContext(), id.UserID))
	return c.Next()
}

func identity(c *fiber.Ctx) auth.Identity { return c.Locals(identityKey).(auth.Identity) }

// bind decodes a JSON body into v.
func bind(c *fiber.Ctx, v any) error {
	if !strings.HasPrefix(strings.ToLower(c.Get(fiber.HeaderContentType)), fiber.MIMEApplicationJSON) {
		return chat.Errorf(protocol.CodeBadRequest, "Content-Type must be application/json")
	}
	return decodeBody(c.Body(), v)
}

// decodeBody is the rule for every REST body: one JSON value, decoded
// strictly (unknown fields are errors), with nothing after it but white
// space, and no string the store could not keep (store.CheckJSON). Errors
// are bad_request.
func decodeBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return chat.Errorf(protocol.CodeBadRequest, "invalid JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return chat.Errorf(protocol.CodeBadRequest, "invalid JSON body: data after the JSON value at byte %d", dec.InputOffset())
	}
	if err := store.CheckJSON("request body", body); err != nil {
		return chat.AsError(err)
	}
	return nil
}

// checkURL refuses a request whose path or query (as decoded) holds a
// string the store could not keep, before any handler looks it up.
func (a *API) checkURL(c *fiber.Ctx) error {
	if err := store.CheckText("path", c.Path()); err != nil {
		return a.Error(c, err)
	}
	var bad error
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if bad == nil {
			bad = store.CheckText("query parameter "+strconv.Quote(store.CleanText(string(k), 64)), string(k)+string(v))
		}
	})
	if bad != nil {
		return a.Error(c, bad)
	}
	return c.Next()
}

// userView is the public shape of an account.
type userView struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email,omitempty"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
	Online    bool   `json:"online"`
	Active    bool   `json:"active"`
	// Clearance is the ABAC clearance level (0–100), shown only to callers
	// who may change it (admin.users), so the console can show what it is
	// about to replace without telling everyone who is cleared for what.
	Clearance *int `json:"clearance,omitempty"`
}

func (a *API) view(u store.User, self bool) userView {
	v := userView{ID: u.ID, Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt, Online: a.o.Chat.Online(u.ID), Active: u.DeactivatedAt == 0}
	if self && u.Email != nil {
		v.Email = *u.Email
	}
	return v
}

func (a *API) me(c *fiber.Ctx) error {
	u, err := a.o.Store.UserByID(c.UserContext(), identity(c).UserID)
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(a.view(u, true))
}

// blockView is the public shape of a block: user is a user id or "*".
type blockView struct {
	User      string `json:"user"`
	CreatedAt int64  `json:"created_at"`
}

func (a *API) listBlocks(c *fiber.Ctx) error {
	bs, err := a.o.Chat.Blocks(c.UserContext(), identity(c))
	if err != nil {
		return a.Error(c, err)
	}
	out := make([]blockView, len(bs))
	for i, b := range bs {
		out[i] = blockView{b.Blocked, b.CreatedAt}
	}
	return c.JSON(fiber.Map{"blocks": out})
}

func (a *API) block(c *fiber.Ctx) error {
	b, err := a.o.Chat.Block(c.UserContext(), identity(c), c.Params("user"))
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(blockView{b.Blocked, b.CreatedAt})
}

func (a *API) unblock(c *fiber.Ctx) error {
	if err := a.o.Chat.Unblock(c.UserContext(), identity(c), c.Params("user")); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) listUsers(c *fiber.Ctx) error {
	us, err := a.o.Store.ListUsers(c.UserContext(), c.Query("q"), queryInt(c, "limit", 50, 1, 200))
	if err != nil {
		return a.Error(c, err)
	}
	admin := a.o.Authz.Decide(authz.Request{Sub: authz.User(identity(c).UserID), Act: authz.OpUsersManage})
	out := make([]userView, len(us))
	for i, u := range us {
		out[i] = a.view(u, false)
		if admin {
			out[i].Clearance = &us[i].Clearance
		}
	}
	return c.JSON(fiber.Map{"users": out})
}

func (a *API) getUser(c *fiber.Ctx) error {
	u, err := a.o.Store.UserByID(c.UserContext(), c.Params("id"))
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(a.view(u, u.ID == identity(c).UserID))
}

func queryInt(c *fiber.Ctx, k string, def, lo, hi int) int {
	v := c.QueryInt(k, def)
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func (a *API) listSpaces(c *fiber.Ctx) error {
	org := c.Query("org", store.DefaultOrg)
	if err := a.decideOrg(c, org, authz.OpSpaceList); err != nil {
		return a.Error(c, err)
	}
	sps, err := a.o.Store.ListSpaces(c.UserContext(), org)
	if err != nil {
		return a.Error(c, err)
	}
	out := make([]spaceView, len(sps))
	for i, sp := range sps {
		out[i] = spaceOut(sp)
	}
	return c.JSON(fiber.Map{"spaces": out})
}

// spaceView is the public shape of a space (snake_case like every other
// body; store.Space has no JSON tags).
type spaceView struct {
	ID        string `json:"id"`
	Org       string `json:"org"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
}

func spaceOut(sp store.Space) spaceView { return spaceView{sp.ID, sp.OrgID, sp.Name, sp.CreatedAt} }

func (a *API) getSpace(c *fiber.Ctx) error {
	sp, err := a.o.Store.SpaceByID(c.UserContext(), c.Params("id"))
	if err != nil {
		return a.Error(c, chat.Errorf(protocol.CodeNotFound, "space %q not found", c.Params("id")))
	}
	if !a.o.Authz.Decide(authz.Request{Sub: authz.User(identity(c).UserID), Space: sp.ID, Org: sp.OrgID, Act: authz.OpSpaceRead}) {
		return a.Error(c, chat.Errorf(protocol.CodeNotFound, "space %q not found", c.Params("id")))
	}
	return c.JSON(spaceOut(sp))
}

func (a *API) createSpace(c *fiber.Ctx) error {
	var req spaceBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	if req.Org == "" {
		req.Org = store.DefaultOrg
	}
	if err := a.decideOrg(c, req.Org, authz.OpSpaceCreate); err != nil {
		return a.Error(c, err)
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 100 {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "name must have 1–100 bytes"))
	}
	sp := store.Space{ID: uuid.NewString(), OrgID: req.Org, Name: strings.TrimSpace(req.Name), CreatedAt: store.Now()}
	if err := a.o.Store.CreateSpace(c.UserContext(), &sp); err != nil {
		return a.Error(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(spaceOut(sp))
}

type roomView struct {
	ID             string `json:"id"`
	Space          string `json:"space"`
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	Topic          string `json:"topic,omitempty"`
	CreatedBy      string `json:"created_by"`
	CreatedAt      int64  `json:"created_at"`
	LastSeq        int64  `json:"last_seq"`
	Classification int    `json:"classification"`
}

func roomOut(r store.Room) roomView {
	return roomView{r.ID, r.SpaceID, r.Name, r.Kind, r.Topic, r.CreatedBy, r.CreatedAt, r.LastSeq, r.Classification}
}

func (a *API) listRooms(c *fiber.Ctx) error {
	var (
		rs  []store.Room
		err error
	)
	if c.Query("public") != "" {
		rs, err = a.o.Chat.PublicRooms(c.UserContext(), identity(c), c.Query("space"), queryInt(c, "limit", 100, 1, 500))
	} else {
		rs, err = a.o.Chat.Rooms(c.UserContext(), identity(c))
	}
	if err != nil {
		return a.Error(c, err)
	}
	out := make([]roomView, len(rs))
	for i, r := range rs {
		out[i] = roomOut(r)
	}
	return c.JSON(fiber.Map{"rooms": out})
}

func (a *API) createRoom(c *fiber.Ctx) error {
	var req chat.CreateRoomRequest
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	r, created, err := a.o.Chat.CreateRoom(c.UserContext(), identity(c), req)
	if err != nil {
		return a.Error(c, err)
	}
	st := fiber.StatusCreated
	if !created {
		st = fiber.StatusOK // the existing direct room
	}
	return c.Status(st).JSON(roomOut(r))
}

func (a *API) getRoom(c *fiber.Ctx) error {
	r, err := a.o.Chat.Room(c.UserContext(), identity(c), c.Params("id"))
	if err != nil {
		return a.Error(c, err)
	}
	if last, err := a.o.Store.LastSeq(c.UserContext(), r.ID); err == nil {
		r.LastSeq = last
	}
	return c.JSON(roomOut(r))
}

func (a *API) updateRoom(c *fiber.Ctx) error {
	var req chat.UpdateRoomRequest
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	r, err := a.o.Chat.UpdateRoom(c.UserContext(), identity(c), c.Params("id"), req)
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(roomOut(r))
}

func (a *API) setMemberRole(c *fiber.Ctx) error {
	var req roleBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	if err := a.o.Chat.SetMemberRole(c.UserContext(), identity(c), c.Params("id"), c.Params("user"), req.Role); err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"room": c.Params("id"), "user": c.Params("user"), "role": req.Role})
}

func (a *API) joinRoom(c *fiber.Ctx) error {
	last, err := a.o.Chat.Join(c.UserContext(), identity(c), c.Params("id"))
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"room": c.Params("id"), "last_seq": last})
}

func (a *API) leaveRoom(c *fiber.Ctx) error {
	if err := a.o.Chat.Leave(c.UserContext(), identity(c), c.Params("id")); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) listMembers(c *fiber.Ctx) error {
	ms, err := a.o.Chat.Members(c.UserContext(), identity(c), c.Params("id"))
	if err != nil {
		return a.Error(c, err)
	}
	type mv struct {
		User     string `json:"user"`
		Role     string `json:"role"`
		LastRead int64  `json:"last_read"`
		JoinedAt int64  `json:"joined_at"`
		Online   bool   `json:"online"`
	}
	out := make([]mv, len(ms))
	for i, m := range ms {
		out[i] = mv{m.UserID, m.Role, m.LastRead, m.JoinedAt, a.o.Chat.Online(m.UserID)}
	}
	return c.JSON(fiber.Map{"members": out})
}

func (a *API) addMember(c *fiber.Ctx) error {
	var req userRefBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	u, err := a.o.Chat.AddMember(c.UserContext(), identity(c), c.Params("id"), req.User)
	if err != nil {
		return a.Error(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"room": c.Params("id"), "user": u.ID})
}

func (a *API) removeMember(c *fiber.Ctx) error {
	if err := a.o.Chat.RemoveMember(c.UserContext(), identity(c), c.Params("id"), c.Params("user")); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func parseSeq(c *fiber.Ctx, k string) (int64, error) {
	v := c.Query(k)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, chat.Errorf(protocol.CodeBadRequest, "%s must be a non-negative integer", k)
	}
	return n, nil
}

func (a *API) history(c *fiber.Ctx) error {
	after, err := parseSeq(c, "after")
	if err != nil {
		return a.Error(c, err)
	}
	before, err := parseSeq(c, "before")
	if err != nil {
		return a.Error(c, err)
	}
	ms, err := a.o.Chat.History(c.UserContext(), identity(c), store.HistoryQuery{Room: c.Params("id"), After: after, Before: before,
		FromStart: c.Query("after") != "", Limit: queryInt(c, "limit", 50, 1, 200)})
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"messages": ms})
}

func (a *API) writeCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), a.o.WriteTimeout)
}

func (a *API) postMessage(c *fiber.Ctx) error {
	var req messageBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	if req.Ref == "" {
		req.Ref = c.Get("Idempotency-Key")
	}
	ctx, cancel := a.writeCtx(c)
	defer cancel()
	ack, err := a.o.Chat.SendWait(ctx, identity(c), chat.SendRequest{Room: c.Params("id"), Text: req.Text, Thread: req.Thread, Ref: req.Ref, Meta: req.Meta})
	if err != nil {
		return a.Error(c, err)
	}
	st := fiber.StatusCreated
	if ack.Duplicate {
		st = fiber.StatusOK
	}
	return c.Status(st).JSON(ack.Frame(req.Ref))
}

func (a *API) editMessage(c *fiber.Ctx) error {
	var req textBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	ctx, cancel := a.writeCtx(c)
	defer cancel()
	ack, err := a.o.Chat.MutateWait(ctx, identity(c), chat.MutateRequest{Kind: store.EventEdited, Room: c.Params("id"), ID: c.Params("mid"), Text: req.Text})
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(ack.Frame(""))
}

func (a *API) deleteMessage(c *fiber.Ctx) error {
	ctx, cancel := a.writeCtx(c)
	defer cancel()
	ack, err := a.o.Chat.MutateWait(ctx, identity(c), chat.MutateRequest{Kind: store.EventDeleted, Room: c.Params("id"), ID: c.Params("mid")})
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(ack.Frame(""))
}

func (a *API) messageEdits(c *fiber.Ctx) error {
	if err := a.o.Chat.Allowed(c.UserContext(), identity(c), c.Params("id"), authz.OpMessageRead); err != nil {
		return a.Error(c, err)
	}
	m, err := a.o.Store.MessageByID(c.UserContext(), c.Params("mid"))
	if err != nil || m.RoomID != c.Params("id") {
		return a.Error(c, chat.Errorf(protocol.CodeNotFound, "message not found in this room"))
	}
	es, err := a.o.Store.Edits(c.UserContext(), m.ID)
	if err != nil {
		return a.Error(c, err)
	}
	type ev struct {
		Seq    int64  `json:"seq"`
		Editor string `json:"editor"`
		Old    string `json:"old_text"`
		At     int64  `json:"ts"`
	}
	out := make([]ev, len(es))
	for i, e := range es {
		out[i] = ev{e.Seq, e.EditorID, e.OldText, e.At}
	}
	return c.JSON(fiber.Map{"edits": out})
}

func (a *API) react(on bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := a.writeCtx(c)
		defer cancel()
		ack, err := a.o.Chat.MutateWait(ctx, identity(c), chat.MutateRequest{Kind: store.EventReaction, Room: c.Params("id"),
			ID: c.Params("mid"), Emoji: c.Params("emoji"), On: on})
		if err != nil {
			return a.Error(c, err)
		}
		return c.JSON(ack.Frame(""))
	}
}

func (a *API) search(c *fiber.Ctx) error {
	ms, err := a.o.Chat.Search(c.UserContext(), identity(c), c.Query("q"), queryInt(c, "limit", 20, 1, 100))
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"messages": ms})
}
