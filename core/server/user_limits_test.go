package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// slowRate is n per day: no token comes back while a test runs, however
// slow the machine, so a test of a limit never depends on timing.
func slowRate(n int) ratelimit.Rate { return ratelimit.Rate{N: n, Per: 24 * time.Hour} }

// TestLimitDefaults pins the documented defaults of the per-user limits
// (docs/operations.md, "Limits"): the tests below use slower rates of the
// same limiters so that they cannot depend on timing.
func TestLimitDefaults(t *testing.T) {
	c := server.DefaultConfig()
	for name, got := range map[string]string{
		"--rate-user-rooms": c.RateUserRooms.String(), "--rate-user-actions": c.RateUserActions.String(),
		"--rate-register": c.RateRegister.String(), "--max-user-sessions": fmt.Sprint(c.MaxUserSessions),
	} {
		want := map[string]string{"--rate-user-rooms": "60/h", "--rate-user-actions": "120/min", "--rate-register": "60/h", "--max-user-sessions": "100"}[name]
		if got != want {
			t.Errorf("%s defaults to %s, want %s", name, got, want)
		}
	}
}

// TestRoomCreationIsLimitedPerUser is issue 12 item 6 (rooms): a user's room
// creations beyond --rate-user-rooms are refused with 429 and Retry-After;
// another user is not affected.
func TestRoomCreationIsLimitedPerUser(t *testing.T) {
	env := servertest.Start(t, servertest.Options{RateLimits: true, Config: func(c *server.Config) { c.RateUserRooms = slowRate(5) }})
	ctx := ctx(t)
	alice, bob := env.NewUser(t, "alice"), env.NewUser(t, "bob")
	for i := range 5 {
		if _, err := alice.API.CreateRoom(ctx, "", "group", bob.ID); err != nil {
			t.Fatalf("room %d: %v", i+1, err)
		}
	}
	_, err := alice.API.CreateRoom(ctx, "", "group", bob.ID)
	servertest.WantCode(t, "6th room", err, protocol.CodeRateLimited)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter == "" || ae.RetryAfterMs <= 0 {
		t.Fatalf("6th room: %v", err)
	}
	if _, err := bob.API.CreateRoom(ctx, "bob's", "public"); err != nil {
		t.Fatalf("another user's room: %v", err)
	}
}

// TestSessionsPerUserAreCapped is issue 12 item 6 (sessions): a login beyond
// the per-user cap (default 100) ends the least recently used session.
func TestSessionsPerUserAreCapped(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Argon2Time, c.Argon2Memory = 1, 64 }})
	ctx := ctx(t)
	env.NewUser(t, "alice") // one session
	first := &client.API{Base: env.URL}
	if _, err := first.Login(ctx, "alice", "password-alice"); err != nil {
		t.Fatal(err)
	}
	var last *client.API
	for range 100 {
		last = &client.API{Base: env.URL}
		if _, err := last.Login(ctx, "alice", "password-alice"); err != nil {
			t.Fatal(err)
		}
	}
	var ss struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if err := last.Do(ctx, "GET", "/v1/sessions", nil, &ss); err != nil {
		t.Fatal(err)
	}
	if len(ss.Sessions) != 100 {
		t.Fatalf("alice has %d active sessions after 102 logins, want 100", len(ss.Sessions))
	}
	_, err := first.Me(ctx)
	servertest.WantCode(t, "an early session's token", err, protocol.CodeUnauthorized)
}

// TestReadJoinLeaveAreLimitedPerUser is issue 12 item 7: read receipts,
// joins and leaves write and broadcast, so they have a per-user budget
// (--rate-user-actions) of their own, apart from messages, over WebSocket
// and REST together.
func TestReadJoinLeaveAreLimitedPerUser(t *testing.T) {
	env := servertest.Start(t, servertest.Options{RateLimits: true, Config: func(c *server.Config) {
		c.RateFrames.N = 0 // the per-connection frame rate is not under test
		c.RateUserActions = slowRate(20)
	}})
	ctx := ctx(t)
	alice, bob := env.NewUser(t, "alice"), env.NewUser(t, "bob")
	room, err := alice.API.CreateRoom(ctx, "general", "public")
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := env.Dial(t, alice), env.Dial(t, bob)
	if _, err := ca.Send(ctx, room.ID, "hi"); err != nil {
		t.Fatal(err)
	}
	var limited error
	ops := 0
	for ops < 100 && limited == nil {
		switch ops % 3 {
		case 0:
			_, limited = cb.Join(ctx, room.ID)
		case 1:
			_, limited = cb.Read(ctx, room.ID, 1)
		case 2:
			_, limited = cb.Leave(ctx, room.ID)
		}
		ops++
	}
	servertest.WantCode(t, fmt.Sprintf("join/read/leave number %d", ops), limited, protocol.CodeRateLimited)
	if ops != 21 {
		t.Errorf("refused at operation %d, want 21 (a budget of 20)", ops)
	}
	if e, ok := limited.(*client.Error); !ok || e.RetryAfterMs <= 0 {
		t.Errorf("refusal without retry_after_ms: %v", limited)
	}
	// The 21st was a leave: bob is still in the room.
	servertest.WantCode(t, "REST leave over the limit", bob.API.Do(ctx, "POST", "/v1/rooms/"+room.ID+"/leave", nil, nil), protocol.CodeRateLimited)
	// A join of a room one is in changes nothing and is not counted.
	if err := bob.API.JoinRoom(ctx, room.ID); err != nil {
		t.Errorf("bob's join of a room he is in: %v", err)
	}
	// Messages have their own budget.
	if _, err := cb.Send(ctx, room.ID, "still here"); err != nil {
		t.Errorf("bob's message after the action limit: %v", err)
	}
}
