package server_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
)

// proxied is a client behind a trusted reverse proxy: every request says
// it was forwarded for addr, with User-Agent ua.
type proxied struct {
	addr, ua string
}

func (p proxied) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", p.addr)
	r.Header.Set("User-Agent", p.ua)
	return http.DefaultTransport.RoundTrip(r)
}

func apiAs(env *servertest.Env, addr, ua string) *client.API {
	return &client.API{Base: env.URL, HTTP: &http.Client{Transport: proxied{addr, ua}}}
}

// secEvents reads events after id through the admin API.
func secEvents(t *testing.T, admin *client.API, query string) []secevent.Record {
	t.Helper()
	var page struct {
		Events []secevent.Record `json:"events"`
	}
	if err := admin.Do(ctx(t), "GET", "/v1/admin/security-events?"+query, nil, &page); err != nil {
		t.Fatalf("GET /v1/admin/security-events?%s: %v", query, err)
	}
	return page.Events
}

// Every kind of action the stream promises becomes an event with its actor,
// target, trusted-proxy resolved client address, User-Agent and outcome —
// and nothing secret (no password typed into the username field, no message
// text). The admin route filters, pages and refuses bad input and members.
func TestSecurityEventsFromRealActions(t *testing.T) {
	env := servertest.Start(t, servertest.Options{RateLimits: true, Config: func(c *server.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.RateLogin = ratelimit.Rate{N: 12, Per: time.Hour}
		c.RateRegister = ratelimit.Rate{N: 100, Per: time.Hour}
		c.RateIP = ratelimit.Rate{N: 1000, Per: time.Hour}
		c.RateUserMessages = ratelimit.Rate{N: 1000, Per: time.Hour}
		c.RateFrames = ratelimit.Rate{N: 5, Per: time.Hour}
	}})
	admin := env.NewUser(t, "admin")
	adminID := admin.ID
	ada := apiAs(env, "203.0.113.7", "sectest/1.0")
	c := ctx(t)
	flush := func() {
		t.Helper()
		if err := env.Server.Events().Flush(c); err != nil {
			t.Fatal(err)
		}
	}
	flush()
	_, mark, _ := env.Server.Events().Bounds(c)

	u, err := ada.Register(c, "ada", "password-ada", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ada.Login(c, "ada", "wrong-password"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := ada.Login(c, "hunter2-typed-as-name", "x"); err == nil {
		t.Fatal("unknown account accepted")
	}
	tok, err := ada.Login(c, "ada", "password-ada")
	if err != nil {
		t.Fatal(err)
	}
	ada.Token = tok.AccessToken
	next, err := ada.Refresh(c, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ada.Refresh(c, tok.RefreshToken); err == nil { // reuse: revokes the session
		t.Fatal("reused refresh token accepted")
	}
	_ = next
	tok2, err := ada.Login(c, "ada", "password-ada")
	if err != nil {
		t.Fatal(err)
	}
	ada.Token = tok2.AccessToken
	if _, err := ada.ChangePassword(c, "nope-nope", "password-ada-2"); err == nil {
		t.Fatal("wrong current password accepted")
	}
	if _, err := ada.ChangePassword(c, "password-ada", "password-ada-2"); err != nil {
		t.Fatal(err)
	}
	room, err := ada.CreateRoom(c, "sec", "public")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ada.PostMessage(c, room.ID, "top secret text")
	if err != nil {
		t.Fatal(err)
	}
	if err := ada.Do(c, "PATCH", "/v1/rooms/"+room.ID+"/messages/"+msg.ID, map[string]string{"text": "more secret text"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := ada.Do(c, "DELETE", "/v1/rooms/"+room.ID+"/messages/"+msg.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	pol := client.Policy{Sub: "user:" + u.ID, Dom: "sys", Act: "audit.read", Eft: "deny"}
	if err := admin.API.AddPolicy(c, pol); err != nil {
		t.Fatal(err)
	}
	if err := admin.API.RemovePolicy(c, pol); err != nil {
		t.Fatal(err)
	}
	if err := admin.API.Do(c, "POST", "/v1/admin/users/"+u.ID+"/deactivate", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.API.Do(c, "POST", "/v1/admin/plugins/reload", nil, nil); err == nil {
		t.Fatal("reload without a plugins file succeeded")
	}
	// Logins over the rate: refused with 429, one event per second at most.
	limited := 0
	for range 15 {
		_, err := ada.Login(c, "ada", "password-ada-2")
		var ae *client.APIError
		if asAPIError(err, &ae) && ae.Status == http.StatusTooManyRequests && strings.Contains(ae.Message, "login requests") {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("no login was rate limited")
	}
	// WebSocket frames over the per-connection rate.
	ws := env.Dial(t, admin)
	framesLimited := false
	for range 10 {
		if err := ws.Ping(c); err != nil && strings.Contains(err.Error(), "rate_limited") {
			framesLimited = true
		}
	}
	if !framesLimited {
		t.Fatal("no frame was rate limited")
	}
	flush()

	evs := secEvents(t, admin.API, fmt.Sprintf("after=%d&limit=1000", mark))
	find := func(typ, outcome string, match func(secevent.Record) bool) secevent.Record {
		t.Helper()
		for _, e := range evs {
			if e.Type == typ && (outcome == "" || e.Outcome == outcome) && (match == nil || match(e)) {
				return e
			}
		}
		t.Fatalf("no %s (%s) event among %d: %+v", typ, outcome, len(evs), evs)
		return secevent.Record{}
	}
	fromAda := func(e secevent.Record) bool { return e.ClientAddr == "203.0.113.7" && e.UserAgent == "sectest/1.0" }
	for i, e := range evs {
		if e.ID != mark+int64(i)+1 {
			t.Fatalf("event %d has id %d: ids are not consecutive", i, e.ID)
		}
		all := fmt.Sprint(e)
		for _, secret := range []string{"secret text", "hunter2", "password-ada", "wrong-password"} {
			if strings.Contains(all, secret) {
				t.Fatalf("event %+v contains %q", e, secret)
			}
		}
	}
	checks := []struct {
		typ, outcome, actor, target string
		match                       func(secevent.Record) bool
	}{
		{"user.registered", "success", u.ID, u.ID, fromAda},
		{"login.failed", "failure", "", u.ID, func(e secevent.Record) bool { return fromAda(e) && e.Details["reason"] == "wrong password" }},
		{"login.failed", "failure", "", "", func(e secevent.Record) bool {
			return fromAda(e) && e.Details["reason"] == "unknown account" && e.Details["username"] == ""
		}},
		{"login.succeeded", "success", u.ID, u.ID, fromAda},
		{"token.refreshed", "success", u.ID, tok.SessionID, fromAda},
		{"token.reused", "denied", "", tok.SessionID, fromAda},
		{"session.revoked", "success", "system", tok.SessionID, func(e secevent.Record) bool { return e.Details["reason"] == "refresh_reuse" }},
		{"password.changed", "failure", u.ID, u.ID, fromAda},
		{"password.changed", "success", u.ID, u.ID, fromAda},
		{"message.edited", "success", u.ID, msg.ID, func(e secevent.Record) bool { return e.Details["room"] == room.ID }},
		{"message.deleted", "success", u.ID, msg.ID, fromAda},
		{"policy.added", "success", adminID, "", func(e secevent.Record) bool { return e.Details["act"] == "audit.read" }},
		{"policy.removed", "success", adminID, "", nil},
		{"user.deactivated", "success", adminID, u.ID, nil},
		{"session.revoked", "success", adminID, tok2.SessionID, func(e secevent.Record) bool { return e.Details["reason"] == "deactivated" }},
		{"role.assigned", "success", "system", "user:" + u.ID, func(e secevent.Record) bool { return e.Details["role"] == "member" }},
		{"plugins.reloaded", "failure", adminID, "", nil},
		{"ratelimit.refused", "denied", "", "203.0.113.7", func(e secevent.Record) bool {
			return fromAda(e) && e.Details["limit"] == "login" && e.TargetKind == "address"
		}},
		{"ratelimit.refused", "denied", adminID, adminID, func(e secevent.Record) bool {
			return e.Details["limit"] == "ws_frames" && e.TargetKind == "user" && e.ClientAddr == "127.0.0.1"
		}},
	}
	for _, ck := range checks {
		e := find(ck.typ, ck.outcome, func(e secevent.Record) bool {
			return (ck.actor == "" || e.Actor == ck.actor) && (ck.target == "" || e.Target == ck.target) && (ck.match == nil || ck.match(e))
		})
		if e.At == 0 {
			t.Fatalf("%s has no time", ck.typ)
		}
	}
	if n := len(filter(evs, "ratelimit.refused")) - 1; n == 0 || n >= limited {
		t.Fatalf("%d ratelimit.refused events for %d refusals within a second or so; want at least one and fewer", n, limited)
	}

	// Filters and paging.
	for _, e := range secEvents(t, admin.API, "type=login.failed&limit=1000") {
		if e.Type != "login.failed" {
			t.Fatalf("type filter let %s through", e.Type)
		}
	}
	for _, e := range secEvents(t, admin.API, "actor="+url.QueryEscape(adminID)+"&limit=1000") {
		if e.Actor != adminID {
			t.Fatalf("actor filter let %q through", e.Actor)
		}
	}
	newest := secEvents(t, admin.API, "limit=3")
	if len(newest) != 3 || newest[0].ID <= newest[1].ID || newest[0].ID != evs[len(evs)-1].ID {
		t.Fatalf("newest first: %+v", newest)
	}
	older := secEvents(t, admin.API, fmt.Sprintf("before=%d&limit=2", newest[2].ID))
	if len(older) != 2 || older[0].ID != newest[2].ID-1 {
		t.Fatalf("before=%d: %+v", newest[2].ID, older)
	}
	for _, q := range []string{"after=abc", "before=-1", "limit=0", "limit=1001", "type=no.such", "after=1&before=5"} {
		err := admin.API.Do(c, "GET", "/v1/admin/security-events?"+q, nil, nil)
		var ae *client.APIError
		if !asAPIError(err, &ae) || ae.Status != http.StatusBadRequest {
			t.Fatalf("?%s: %v; want 400", q, err)
		}
	}
	member := env.NewUser(t, "member")
	err = member.API.Do(c, "GET", "/v1/admin/security-events", nil, nil)
	var ae *client.APIError
	if !asAPIError(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("a member reading security events: %v; want 403", err)
	}
}

func filter(evs []secevent.Record, typ string) []secevent.Record {
	var out []secevent.Record
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func asAPIError(err error, ae **client.APIError) bool { return errors.As(err, ae) }
