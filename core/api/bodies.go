package api

import (
	"encoding/json"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
)

// The JSON body of each REST route that reads one. Every body goes through
// decodeBody (bind); requestBodies declares which type each route decodes,
// for FuzzRequestBody and TestEveryBodyIsDeclared.

// registerBody is POST /v1/auth/register.
type registerBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
	Invite   string `json:"invite"`
}

// loginBody is POST /v1/auth/login; Device is a string or an object (parseDevice).
type loginBody struct {
	Username string          `json:"username"` // or the email address
	Password string          `json:"password"`
	Device   json.RawMessage `json:"device"`
}

// exchangeBody is POST /v1/auth/exchange: a one-time login code from an
// identity plugin; Device as for loginBody.
type exchangeBody struct {
	Code   string          `json:"code"`
	Device json.RawMessage `json:"device"`
}

// mfaCompleteBody is POST /v1/auth/mfa/complete.
type mfaCompleteBody struct {
	Challenge string `json:"challenge"`
	Secret    string `json:"secret"`
}

// refreshBody is POST /v1/auth/refresh and, optionally, /v1/auth/logout.
type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

// passwordBody is POST /v1/auth/password.
type passwordBody struct {
	Current string `json:"current_password"`
	New     string `json:"new_password"`
}

// deviceUpdateBody is PATCH /v1/devices/{id}: nil fields stay.
type deviceUpdateBody struct {
	Name      *string `json:"name"`
	PublicKey *string `json:"public_key"`
}

// nameBody is POST /v1/orgs.
type nameBody struct {
	Name string `json:"name"`
}

// roleBody is PUT /v1/orgs/{id}/members/{user} and PUT /v1/rooms/{id}/members/{user}.
type roleBody struct {
	Role string `json:"role"`
}

// spaceBody is POST /v1/spaces.
type spaceBody struct {
	Name string `json:"name"`
	Org  string `json:"org"`
}

// userRefBody is POST /v1/rooms/{id}/members.
type userRefBody struct {
	User string `json:"user"`
}

// messageBody is POST /v1/rooms/{id}/messages.
type messageBody struct {
	Text   string          `json:"text"`
	Thread string          `json:"thread"`
	Meta   json.RawMessage `json:"meta"`
	Ref    string          `json:"ref"`
}

// textBody is PATCH /v1/rooms/{id}/messages/{mid}.
type textBody struct {
	Text string `json:"text"`
}

// adminUserBody is POST /v1/admin/users.
type adminUserBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
	Role     string `json:"role"`
}

// inviteBody is POST /v1/admin/invites (the body is optional).
type inviteBody struct {
	MaxUses   int    `json:"max_uses"`
	ExpiresIn int64  `json:"expires_in"` // seconds
	Note      string `json:"note"`
}

// clearanceBody is PUT /v1/admin/users/{id}/clearance.
type clearanceBody struct {
	Clearance int `json:"clearance"`
}

// requestBodies maps "METHOD /path" of every route that decodes a JSON
// body to a new value of its body type. Routes missing here take no body
// (TestEveryBodyIsDeclared checks both lists against the router).
var requestBodies = map[string]func() any{
	"POST /v1/auth/register":            func() any { return new(registerBody) },
	"POST /v1/auth/login":               func() any { return new(loginBody) },
	"POST /v1/auth/exchange":            func() any { return new(exchangeBody) },
	"POST /v1/auth/mfa/complete":        func() any { return new(mfaCompleteBody) },
	"POST /v1/auth/refresh":             func() any { return new(refreshBody) },
	"POST /v1/auth/logout":              func() any { return new(refreshBody) },
	"POST /v1/auth/password":            func() any { return new(passwordBody) },
	"POST /v1/devices":                  func() any { return new(auth.DeviceSpec) },
	"PATCH /v1/devices/:id":             func() any { return new(deviceUpdateBody) },
	"POST /v1/orgs":                     func() any { return new(nameBody) },
	"PUT /v1/orgs/:id/members/:user":    func() any { return new(roleBody) },
	"POST /v1/spaces":                   func() any { return new(spaceBody) },
	"POST /v1/rooms":                    func() any { return new(chat.CreateRoomRequest) },
	"PATCH /v1/rooms/:id":               func() any { return new(chat.UpdateRoomRequest) },
	"POST /v1/rooms/:id/members":        func() any { return new(userRefBody) },
	"PUT /v1/rooms/:id/members/:user":   func() any { return new(roleBody) },
	"POST /v1/rooms/:id/messages":       func() any { return new(messageBody) },
	"PATCH /v1/rooms/:id/messages/:mid": func() any { return new(textBody) },
	"POST /v1/admin/users":              func() any { return new(adminUserBody) },
	"POST /v1/admin/invites":            func() any { return new(inviteBody) },
	"POST /v1/admin/roles":              func() any { return new(authz.Role) },
	"POST /v1/admin/policies":           func() any { return new(authz.Policy) },
	"DELETE /v1/admin/policies":         func() any { return new(authz.Policy) },
	"PUT /v1/admin/assignments":         func() any { return new(authz.Assignment) },
	"DELETE /v1/admin/assignments":      func() any { return new(authz.Assignment) },
	"PUT /v1/admin/users/:id/clearance": func() any { return new(clearanceBody) },
}
