package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// TestRoomCreationIsLimitedPerUser is issue 12 item 6 (rooms): with the
// default limits, a user's 61st room within the hour is refused with 429;
// another user is not affected.
func TestRoomCreationIsLimitedPerUser(t *testing.T) {
	env := servertest.Start(t, servertest.Options{RateLimits: true})
	ctx := ctx(t)
	alice, bob := env.NewUser(t, "alice"), env.NewUser(t, "bob")
	for i := range 60 {
		if _, err := alice.API.CreateRoom(ctx, "", "group", bob.ID); err != nil {
			t.Fatalf("room %d: %v", i+1, err)
		}
	}
	_, err := alice.API.CreateRoom(ctx, "", "group", bob.ID)
	servertest.WantCode(t, "61st room", err, protocol.CodeRateLimited)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter == "" || ae.RetryAfterMs <= 0 {
		t.Fatalf("61st room: %v", err)
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
// (default 120/min) of their own, apart from messages.
func TestReadJoinLeaveAreLimitedPerUser(t *testing.T) {
	env := servertest.Start(t, servertest.Options{RateLimits: true, Config: func(c *server.Config) { c.RateFrames.N = 0 }})
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
	for ops < 200 && limited == nil {
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
	if ops != 121 {
		t.Errorf("refused at operation %d, want 121 (the default 120/min)", ops)
	}
	if e, ok := limited.(*client.Error); !ok || e.RetryAfterMs <= 0 {
		t.Errorf("refusal without retry_after_ms: %v", limited)
	}
	servertest.WantCode(t, "REST join over the limit", bob.API.JoinRoom(ctx, room.ID), protocol.CodeRateLimited)
	// Messages have their own budget.
	if _, err := cb.Send(ctx, room.ID, "still here"); err != nil && servertest.Code(err) != protocol.CodeForbidden {
		t.Errorf("message after the action limit: %v", err)
	}
	if _, err := ca.Send(ctx, room.ID, "alice too"); err != nil {
		t.Errorf("another user's message: %v", err)
	}
}
