package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/unhidra/unhidra/sdk/protocol"
)

// API is a small REST client for /v1. Base is the server's http(s) URL.
type API struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// APIError is a non-2xx REST answer.
type APIError struct {
	Status int
	// RetryAfter is the Retry-After header (seconds) of a 429 or 503.
	RetryAfter string
	protocol.ErrorBody
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Do sends a JSON request and decodes a JSON answer into out (if non-nil).
func (a *API) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.Base, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
		_ = json.NewDecoder(resp.Body).Decode(&e.ErrorBody)
		return e
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// User is an account as the API shows it.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
	Role     string `json:"role"`
	Online   bool   `json:"online"`
}

// Tokens is a login or refresh answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
	SessionID    string `json:"session_id"`
	DeviceID     string `json:"device_id"`
}

// Device names the device a login binds its session to: ID of a device
// registered before, or Name/Platform for a new one.
type Device struct {
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	Platform  string `json:"platform,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
}

// LoginDevice logs in on a device and sets a.Token.
func (a *API) LoginDevice(ctx context.Context, username, password string, d Device) (Tokens, error) {
	var t Tokens
	err := a.Do(ctx, http.MethodPost, "/v1/auth/login", map[string]any{"username": username, "password": password, "device": d}, &t)
	if err == nil {
		a.Token = t.AccessToken
	}
	return t, err
}

// Refresh rotates a refresh token and sets a.Token to the new access token.
func (a *API) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	var t Tokens
	err := a.Do(ctx, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": refresh}, &t)
	if err == nil {
		a.Token = t.AccessToken
	}
	return t, err
}

// Logout ends the session of refresh.
func (a *API) Logout(ctx context.Context, refresh string) error {
	return a.Do(ctx, http.MethodPost, "/v1/auth/logout", map[string]string{"refresh_token": refresh}, nil)
}

// ChangePassword sets a new password; every other session of the account
// ends. It returns how many sessions were revoked.
func (a *API) ChangePassword(ctx context.Context, current, next string) (int, error) {
	var out struct {
		Revoked int `json:"revoked_sessions"`
	}
	err := a.Do(ctx, http.MethodPost, "/v1/auth/password", map[string]string{"current_password": current, "new_password": next}, &out)
	return out.Revoked, err
}

// Room is a room as the API shows it.
type Room struct {
	ID      string `json:"id"`
	Space   string `json:"space"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	LastSeq int64  `json:"last_seq"`
}

// Register creates an account.
func (a *API) Register(ctx context.Context, username, password, email string) (User, error) {
	var out struct {
		User User `json:"user"`
	}
	err := a.Do(ctx, http.MethodPost, "/v1/auth/register", map[string]string{"username": username, "password": password, "email": email}, &out)
	return out.User, err
}

// Login returns tokens and, for convenience, sets a.Token.
func (a *API) Login(ctx context.Context, username, password string) (Tokens, error) {
	var t Tokens
	err := a.Do(ctx, http.MethodPost, "/v1/auth/login", map[string]string{"username": username, "password": password}, &t)
	if err == nil {
		a.Token = t.AccessToken
	}
	return t, err
}

// Me returns the caller's account.
func (a *API) Me(ctx context.Context) (User, error) {
	var u User
	return u, a.Do(ctx, http.MethodGet, "/v1/me", nil, &u)
}

// CreateRoom creates a room.
func (a *API) CreateRoom(ctx context.Context, name, kind string, members ...string) (Room, error) {
	var r Room
	return r, a.Do(ctx, http.MethodPost, "/v1/rooms", map[string]any{"name": name, "kind": kind, "members": members}, &r)
}

// JoinRoom joins a public room.
func (a *API) JoinRoom(ctx context.Context, room string) error {
	return a.Do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(room)+"/join", nil, nil)
}

// AddMember adds a user (id or username) to a room.
func (a *API) AddMember(ctx context.Context, room, user string) error {
	return a.Do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(room)+"/members", map[string]string{"user": user}, nil)
}

// PostMessage posts through REST with the same durability as a WS send.
func (a *API) PostMessage(ctx context.Context, room, text string) (protocol.Frame, error) {
	var f protocol.Frame
	return f, a.Do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(room)+"/messages", map[string]string{"text": text}, &f)
}

// History lists messages of a room by seq window (0 = unbounded): with
// after > 0 the oldest messages after it, else the newest (before before).
// HistoryFrom pages forward from the very start.
func (a *API) History(ctx context.Context, room string, after, before int64, limit int) ([]protocol.Message, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Messages []protocol.Message `json:"messages"`
	}
	return out.Messages, a.Do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), nil, &out)
}

// HistoryFrom lists up to limit messages with seq > after in ascending
// order, including from the start of the room (after = 0).
func (a *API) HistoryFrom(ctx context.Context, room string, after int64, limit int) ([]protocol.Message, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatInt(after, 10))
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Messages []protocol.Message `json:"messages"`
	}
	return out.Messages, a.Do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), nil, &out)
}

// Search finds messages in the caller's rooms.
func (a *API) Search(ctx context.Context, q string) ([]protocol.Message, error) {
	var out struct {
		Messages []protocol.Message `json:"messages"`
	}
	return out.Messages, a.Do(ctx, http.MethodGet, "/v1/search?q="+url.QueryEscape(q), nil, &out)
}

// WSURL turns the API base into the WebSocket endpoint URL.
func (a *API) WSURL() string {
	b := strings.TrimRight(a.Base, "/")
	if strings.HasPrefix(b, "https://") {
		return "wss://" + strings.TrimPrefix(b, "https://") + "/v1/ws"
	}
	return "ws://" + strings.TrimPrefix(b, "http://") + "/v1/ws"
}

// Org is an org as the API shows it.
type Org struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Space is a space as the API shows it.
type Space struct {
	ID   string `json:"id"`
	Org  string `json:"org"`
	Name string `json:"name"`
}

// Assignment is a role held by a subject in a scope (org:<id>,
// space:<id>, room:<id> or sys).
type Assignment struct {
	Subject string `json:"subject"`
	Role    string `json:"role"`
	Scope   string `json:"scope"`
}

// Policy is one authorization rule (see docs/authorization.md).
type Policy struct {
	Sub  string `json:"sub"`
	Dom  string `json:"dom"`
	Act  string `json:"act"`
	Eft  string `json:"eft"`
	Cond string `json:"cond,omitempty"`
}

// CreateOrg creates an org (superadmin).
func (a *API) CreateOrg(ctx context.Context, name string) (Org, error) {
	var o Org
	return o, a.Do(ctx, http.MethodPost, "/v1/orgs", map[string]string{"name": name}, &o)
}

// CreateSpace creates a space in org ("" means the default org).
func (a *API) CreateSpace(ctx context.Context, org, name string) (Space, error) {
	var s Space
	return s, a.Do(ctx, http.MethodPost, "/v1/spaces", map[string]string{"name": name, "org": org}, &s)
}

// CreateRoomIn creates a room in a space.
func (a *API) CreateRoomIn(ctx context.Context, space, name, kind string, members ...string) (Room, error) {
	var r Room
	return r, a.Do(ctx, http.MethodPost, "/v1/rooms", map[string]any{"name": name, "kind": kind, "space": space, "members": members}, &r)
}

// SetOrgMember gives user (id or username) role in org.
func (a *API) SetOrgMember(ctx context.Context, org, user, role string) error {
	return a.Do(ctx, http.MethodPut, "/v1/orgs/"+url.PathEscape(org)+"/members/"+url.PathEscape(user), map[string]string{"role": role}, nil)
}

// SetRoomRole gives user role in room (adding them if needed).
func (a *API) SetRoomRole(ctx context.Context, room, user, role string) error {
	return a.Do(ctx, http.MethodPut, "/v1/rooms/"+url.PathEscape(room)+"/members/"+url.PathEscape(user), map[string]string{"role": role}, nil)
}

// RemoveMember removes user from room (or leaves, for oneself).
func (a *API) RemoveMember(ctx context.Context, room, user string) error {
	return a.Do(ctx, http.MethodDelete, "/v1/rooms/"+url.PathEscape(room)+"/members/"+url.PathEscape(user), nil, nil)
}

// Assign grants a role in a scope through the admin API.
func (a *API) Assign(ctx context.Context, as Assignment) error {
	return a.Do(ctx, http.MethodPut, "/v1/admin/assignments", as, nil)
}

// Unassign revokes a role in a scope through the admin API.
func (a *API) Unassign(ctx context.Context, as Assignment) error {
	return a.Do(ctx, http.MethodDelete, "/v1/admin/assignments", as, nil)
}

// Assignments lists the role assignments of a scope ("" = all, superadmin).
func (a *API) Assignments(ctx context.Context, scope string) ([]Assignment, error) {
	var out struct {
		Assignments []Assignment `json:"assignments"`
	}
	q := ""
	if scope != "" {
		q = "?scope=" + url.QueryEscape(scope)
	}
	return out.Assignments, a.Do(ctx, http.MethodGet, "/v1/admin/assignments"+q, nil, &out)
}

// AddPolicy adds an authorization rule.
func (a *API) AddPolicy(ctx context.Context, p Policy) error {
	return a.Do(ctx, http.MethodPost, "/v1/admin/policies", p, nil)
}

// RemovePolicy removes an authorization rule.
func (a *API) RemovePolicy(ctx context.Context, p Policy) error {
	return a.Do(ctx, http.MethodDelete, "/v1/admin/policies", p, nil)
}

// Policies lists the authorization rules.
func (a *API) Policies(ctx context.Context) ([]Policy, error) {
	var out struct {
		Policies []Policy `json:"policies"`
	}
	return out.Policies, a.Do(ctx, http.MethodGet, "/v1/admin/policies", nil, &out)
}

// AddRole defines a custom role inheriting the given roles.
func (a *API) AddRole(ctx context.Context, name string, inherits ...string) error {
	return a.Do(ctx, http.MethodPost, "/v1/admin/roles", map[string]any{"name": name, "inherits": inherits}, nil)
}
