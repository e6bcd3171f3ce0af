package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// limit refuses a request over l's rate for the client address with 429,
// Retry-After and retry_after_ms.
func (a *API) limit(l *ratelimit.Limiter, what string) fiber.Handler {
	if l == nil {
		return func(c *fiber.Ctx) error { return c.Next() }
	}
	return func(c *fiber.Ctx) error {
		if ok, wait := l.Allow(a.o.ClientIP(c)); !ok {
			a.o.Events.RateLimited(c.UserContext(), what, "address", a.o.ClientIP(c), l.Rate(), wait)
			return a.Error(c, chat.RateLimited(wait, "too many %s requests from this address (limit %s)", what, l.Rate()))
		}
		return c.Next()
	}
}

func (a *API) jwks(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/jwk-set+json")
	// Shorter than the key publish lead (10m by default), so every verifier
	// sees a new key before it signs.
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(a.o.Auth.JWKS())
}

func (a *API) register(c *fiber.Ctx) error {
	var req registerBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	u, err := a.o.Auth.Register(c.UserContext(), auth.RegisterRequest{Username: req.Username, Password: req.Password, Email: req.Email, Invite: req.Invite})
	if err != nil {
		return a.Error(c, err)
	}
	if err := a.o.Authz.UserCreated(c.UserContext(), u); err != nil {
		return a.Error(c, err)
	}
	a.o.Chat.UserCreated(u, "") // self-registration: no actor
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"user": a.view(u, true)})
}

// parseDevice reads the login's device: a JSON object {id?, name, platform,
// public_key?}, or a string (an existing device id, else the new device's name).
func parseDevice(raw json.RawMessage) (auth.DeviceSpec, error) {
	var d auth.DeviceSpec
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return d, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return d, chat.Errorf(protocol.CodeBadRequest, "device: %v", err)
		}
		if isUUID(s) {
			d.ID = s
		} else {
			d.Name = s
		}
		return d, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, chat.Errorf(protocol.CodeBadRequest, "device must be a string or {id, name, platform, public_key}: %v", err)
	}
	return d, nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if r != '-' {
				return false
			}
		} else if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

func (a *API) login(c *fiber.Ctx) error {
	var req loginBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	dev, err := parseDevice(req.Device)
	if err != nil {
		return a.Error(c, err)
	}
	t, err := a.o.Auth.Login(c.UserContext(), auth.LoginRequest{Login: req.Username, Password: req.Password, Device: dev,
		IP: a.o.ClientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)})
	return a.tokens(c, t, err)
}

// mfaBody is the answer to a login that needs a second factor: a 401 whose
// error body says so and carries the challenge, so that a client that does
// not know second factors fails plainly instead of mistaking it for tokens.
type mfaBody struct {
	protocol.ErrorBody
	MFARequired bool `json:"mfa_required"`
	*auth.SecondFactorRequired
}

// tokens answers a login step: the tokens, the second-factor challenge, or
// the error.
func (a *API) tokens(c *fiber.Ctx, t auth.Tokens, err error) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	var mfa *auth.SecondFactorRequired
	if errors.As(err, &mfa) {
		return c.Status(fiber.StatusUnauthorized).JSON(mfaBody{ErrorBody: protocol.ErrorBody{Code: protocol.CodeUnauthorized,
			Message: mfa.Error()}, MFARequired: true, SecondFactorRequired: mfa})
	}
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(t)
}

// loginMethods lists how one can sign in: the password, and every method
// a running plugin registered.
func (a *API) loginMethods(c *fiber.Ctx) error {
	type method struct {
		Kind   string `json:"kind"`
		Plugin string `json:"plugin,omitempty"`
		ID     string `json:"id"`
		Label  string `json:"label"`
		URL    string `json:"url,omitempty"`
	}
	out := []method{{Kind: "password", ID: "password", Label: "Username and password"}}
	if a.o.LoginMethods != nil {
		for _, m := range a.o.LoginMethods() {
			out = append(out, method{Kind: "plugin", Plugin: m.Plugin, ID: m.ID, Label: m.Label, URL: m.URL})
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"methods": out})
}

// exchange redeems an identity plugin's one-time code.
func (a *API) exchange(c *fiber.Ctx) error {
	var req exchangeBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	if req.Code == "" {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "code is required"))
	}
	dev, err := parseDevice(req.Device)
	if err != nil {
		return a.Error(c, err)
	}
	t, err := a.o.Auth.ExchangeCode(c.UserContext(), req.Code, dev, a.o.ClientIP(c), c.Get(fiber.HeaderUserAgent))
	return a.tokens(c, t, err)
}

// completeMFA turns a confirmed second-factor challenge into tokens.
func (a *API) completeMFA(c *fiber.Ctx) error {
	var req mfaCompleteBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	if req.Challenge == "" || req.Secret == "" {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "challenge and secret are required"))
	}
	t, err := a.o.Auth.CompleteSecondFactor(c.UserContext(), req.Challenge, req.Secret, a.o.ClientIP(c), c.Get(fiber.HeaderUserAgent))
	return a.tokens(c, t, err)
}

func (a *API) refresh(c *fiber.Ctx) error {
	var req refreshBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	t, err := a.o.Auth.Refresh(c.UserContext(), req.RefreshToken)
	if err != nil {
		return a.Error(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(t)
}

// logout ends the session named by the refresh token in the body or, with
// no body, the session of the bearer access token.
func (a *API) logout(c *fiber.Ctx) error {
	var req refreshBody
	if len(bytes.TrimSpace(c.Body())) > 0 {
		if err := bind(c, &req); err != nil {
			return a.Error(c, err)
		}
	}
	if req.RefreshToken != "" {
		if err := a.o.Auth.Logout(c.UserContext(), req.RefreshToken); err != nil {
			return a.Error(c, err)
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
	tok, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "send {refresh_token} or an Authorization: Bearer access token"))
	}
	id, err := a.o.Auth.Authenticate(c.UserContext(), tok)
	if err != nil {
		return a.Error(c, chat.Errorf(protocol.CodeUnauthorized, "%v", err))
	}
	if err := a.o.Auth.RevokeSession(c.UserContext(), id.UserID, id.SessionID, auth.RevokeLogout); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) changePassword(c *fiber.Ctx) error {
	var req passwordBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	n, err := a.o.Auth.ChangePassword(c.UserContext(), identity(c), req.Current, req.New, a.o.ClientIP(c))
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(fiber.Map{"revoked_sessions": n})
}

func (a *API) listSessions(c *fiber.Ctx) error {
	id := identity(c)
	ss, err := a.o.Auth.ListSessions(c.UserContext(), id.UserID, c.QueryBool("all"))
	if err != nil {
		return a.Error(c, err)
	}
	for i := range ss {
		ss[i].Current = ss[i].ID == id.SessionID
	}
	return c.JSON(fiber.Map{"sessions": ss})
}

func (a *API) revokeSession(c *fiber.Ctx) error {
	id := identity(c)
	if err := a.o.Auth.RevokeSession(c.UserContext(), id.UserID, c.Params("id"), auth.RevokeUser); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) listDevices(c *fiber.Ctx) error {
	id := identity(c)
	ds, err := a.o.Auth.ListDevices(c.UserContext(), id.UserID, c.QueryBool("all"))
	if err != nil {
		return a.Error(c, err)
	}
	for i := range ds {
		ds[i].Current = ds[i].ID == id.DeviceID
	}
	return c.JSON(fiber.Map{"devices": ds})
}

func (a *API) registerDevice(c *fiber.Ctx) error {
	var req auth.DeviceSpec
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	if req.ID != "" {
		return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "the server assigns device ids; leave id out"))
	}
	d, err := a.o.Auth.RegisterDevice(c.UserContext(), identity(c).UserID, req)
	if err != nil {
		return a.Error(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(d)
}

func (a *API) updateDevice(c *fiber.Ctx) error {
	var req deviceUpdateBody
	if err := bind(c, &req); err != nil {
		return a.Error(c, err)
	}
	d, err := a.o.Auth.UpdateDevice(c.UserContext(), identity(c).UserID, c.Params("id"), req.Name, req.PublicKey)
	if err != nil {
		return a.Error(c, err)
	}
	return c.JSON(d)
}

func (a *API) revokeDevice(c *fiber.Ctx) error {
	if err := a.o.Auth.RevokeDevice(c.UserContext(), identity(c).UserID, c.Params("id")); err != nil {
		return a.Error(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }
