// Package api serves the REST surface: /v1/auth, rooms, history, search,
// users and spaces. Every handler goes through the same chat service as the
// WebSocket gateway, so durability and checks are identical.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/metrics"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Options configures the API.
type Options struct {
	Chat    *chat.Service
	Auth    *auth.Service
	Store   *store.Store
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// WriteTimeout bounds how long a POST waits for its commit (default 10s).
	WriteTimeout time.Duration
	// Limits are the per-address limits of the auth endpoints (nil: none).
	Limits Limits
	// ClientIP returns a request's client address (default: the TCP peer).
	ClientIP func(*fiber.Ctx) string
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
type API struct{ o Options }

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

// Register mounts every route on r.
func (a *API) Register(r fiber.Router) {
	r.Get("/.well-known/jwks.json", a.jwks)
	v1 := r.Group("/v1")
	lim := a.o.Limits
	v1.Post("/auth/register", a.limit(lim.Register, "registration"), a.register)
	v1.Post("/auth/login", a.limit(lim.Login, "login"), a.login)
	v1.Post("/auth/refresh", a.limit(lim.IP, "auth"), a.refresh)
	v1.Post("/auth/logout", a.limit(lim.IP, "auth"), a.logout)
	v1.Post("/auth/password", a.limit(lim.IP, "auth"), a.requireAuth, a.changePassword)

	p := v1.Group("", a.requireAuth)
	p.Get("/me", a.me)
	p.Get("/users", a.listUsers)
	p.Get("/users/:id", a.getUser)
	p.Get("/spaces", a.listSpaces)
	p.Post("/spaces", a.createSpace)
	p.Get("/rooms", a.listRooms)
	p.Post("/rooms", a.createRoom)
	p.Get("/rooms/:id", a.getRoom)
	p.Post("/rooms/:id/join", a.joinRoom)
	p.Post("/rooms/:id/leave", a.leaveRoom)
	p.Get("/rooms/:id/members", a.listMembers)
	p.Post("/rooms/:id/members", a.addMember)
	p.Delete("/rooms/:id/members/:user", a.removeMember)
	p.Get("/rooms/:id/messages", a.history)
	p.Post("/rooms/:id/messages", a.postMessage)
	p.Patch("/rooms/:id/messages/:mid", a.editMessage)
	p.Delete("/rooms/:id/messages/:mid", a.deleteMessage)
	p.Get("/rooms/:id/messages/:mid/edits", a.messageEdits)
	p.Put("/rooms/:id/messages/:mid/reactions/:emoji", a.react(true))
	p.Delete("/rooms/:id/messages/:mid/reactions/:emoji", a.react(false))
	p.Get("/search", a.search)
	p.Get("/sessions", a.listSessions)
	p.Delete("/sessions/:id", a.revokeSession)
	p.Get("/devices", a.listDevices)
	p.Post("/devices", a.registerDevice)
	p.Patch("/devices/:id", a.updateDevice)
	p.Delete("/devices/:id", a.revokeDevice)

	adm := v1.Group("/admin", a.requireAuth, a.requireSuperadmin)
	adm.Post("/users", a.adminCreateUser)
	adm.Post("/users/:id/deactivate", a.adminSetActive(false))
	adm.Post("/users/:id/reactivate", a.adminSetActive(true))
	adm.Get("/users/:id/sessions", a.adminListSessions)
	adm.Post("/users/:id/revoke-sessions", a.adminRevokeUserSessions)
	adm.Delete("/sessions/:id", a.adminRevokeSession)
	adm.Get("/users/:id/devices", a.adminListDevices)
	adm.Delete("/users/:id/devices/:device", a.adminRevokeDevice)
	adm.Post("/invites", a.adminCreateInvite)
	adm.Get("/invites", a.adminListInvites)
	adm.Delete("/invites/:id", a.adminRevokeInvite)
	adm.Get("/keys", a.adminKeys)
	adm.Post("/keys/rotate", a.adminRotateKeys)
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
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrInvalidToken):
		e = &chat.Error{Code: protocol.CodeUnauthorized, Message: err.Error()}
	case errors.Is(err, auth.ErrTaken):
		e = &chat.Error{Code: protocol.CodeConflict, Message: err.Error()}
	case errors.Is(err, auth.ErrRegistrationClosed), errors.Is(err, auth.ErrInviteRequired), errors.Is(err, auth.ErrWrongPassword):
		e = &chat.Error{Code: protocol.CodeForbidden, Message: err.Error()}
	case errors.Is(err, auth.ErrNotFound):
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
	h := c.Get(fiber.HeaderAuthorization)
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
		return a.Error(c, chat.Errorf(protocol.CodeUnauthorized, "missing bearer token"))
	}
	id, err := a.o.Auth.Authenticate(c.UserContext(), strings.TrimSpace(h[7:]))
	if err != nil {
		return a.Error(c, chat.Errorf(protocol.CodeUnauthorized, "%v", err))
	}
	c.Locals(identityKey, id)
	return c.Next()
}

func identity(c *fiber.Ctx) auth.Identity { return c.Locals(identityKey).(auth.Identity) }

// bind decodes a JSON body strictly (unknown fields are errors).
func bind(c *fiber.Ctx, v any) error {
	if !strings.HasPrefix(strings.ToLower(c.Get(fiber.HeaderContentType)), fiber.MIMEApplicationJSON) {
		return chat.Errorf(protocol.CodeBadRequest, "Content-Type must be application/json")
	}
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return chat.Errorf(protocol.CodeBadRequest, "invalid JSON body: %v", err)
	}
	return nil
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

func (a *API) listUsers(c *fiber.Ctx) error {
	us, err := a.o.Store.ListUsers(c.UserContext(), c.Query("q"), queryInt(c, "limit", 50, 1, 200))
	if err != nil {
		return a.Error(c, err)
	}
	out := make([]userView, len(us))
	for i, u := range us {
		out[i] = a.view(u, false)
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
	sps, err := a.o.Store.ListSpaces(c.UserContext(), store.DefaultOrg)
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

func (a *API) createSpace(c *fiber.Ctx) error {
	if identity(c).Role != "superadmin" {
		return a.Error(c, chat.Errorf(protocol.CodeForbidden, "only admins create spaces"))
	}
	var req struct {
		Name string `json:"name"`
	}
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 100 {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "name must have 1–100 bytes"))
	}
	sp := store.Space{ID: uuid.NewString(), OrgID: store.DefaultOrg, Name: strings.TrimSpace(req.Name), CreatedAt: store.Now()}
	if err := a.o.Store.CreateSpace(c.UserContext(), &sp); err != nil {
		return a.Error(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(spaceOut(sp))
}

type roomView struct {
	ID        string `json:"id"`
	Space     string `json:"space"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Topic     string `json:"topic,omitempty"`
	CreatedBy string `json:"created_by"`
	CreatedAt int64  `json:"created_at"`
	LastSeq   int64  `json:"last_seq"`
}

func roomOut(r store.Room) roomView {
	return roomView{r.ID, r.SpaceID, r.Name, r.Kind, r.Topic, r.CreatedBy, r.CreatedAt, r.LastSeq}
}

func (a *API) listRooms(c *fiber.Ctx) error {
	var (
		rs  []store.Room
		err error
	)
	if c.Query("public") != "" {
		rs, err = a.o.Store.PublicRooms(c.UserContext(), c.Query("space"), queryInt(c, "limit", 100, 1, 500))
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
	var req struct {
		User string `json:"user"`
	}
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
	var req struct {
		Text   string          `json:"text"`
		Thread string          `json:"thread"`
		Meta   json.RawMessage `json:"meta"`
		Ref    string          `json:"ref"`
	}
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
	var req struct {
		Text string `json:"text"`
	}
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
	id := identity(c)
	if !a.o.Chat.IsMember(c.UserContext(), c.Params("id"), id.UserID) {
		return a.Error(c, chat.Errorf(protocol.CodeNotFound, "room not found"))
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
