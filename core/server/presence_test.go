package server_test

import (
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// waitSessions waits until the server has n open sessions, so that what a
// closed session triggers (presence, unsubscription) has happened.
func waitSessions(t *testing.T, env *servertest.Env, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for env.Server.Gateway().Sessions() != n {
		if time.Now().After(deadline) {
			t.Fatalf("server has %d sessions, want %d", env.Server.Gateway().Sessions(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expectNoPresenceBefore reads c up to the message msgID and fails if a
// presence frame comes first.
func expectNoPresenceBefore(t *testing.T, c *client.Conn, msgID string) {
	t.Helper()
	f := servertest.NextWhere(t, c, wait, "marker message", func(f protocol.Frame) bool {
		return f.Type == protocol.TypePresence || (f.Type == protocol.TypeMessage && f.ID == msgID)
	})
	if f.Type == protocol.TypePresence {
		t.Fatalf("unexpected presence %+v", f)
	}
}

// TestPresenceAcrossSessions: a user with several sessions is online from
// the first and offline only after the last; other members hear each
// transition exactly once, and the REST view agrees.
func TestPresenceAcrossSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
		room, err := a.API.CreateRoom(ctx, "both", "private", "bob")
		if err != nil {
			t.Fatal(err)
		}
		// A second shared room must not double the presence frames.
		if _, err := a.API.CreateRoom(ctx, "both2", "group", "bob"); err != nil {
			t.Fatal(err)
		}
		online := func() bool {
			var v client.User
			if err := a.API.Do(ctx, "GET", "/v1/users/"+b.ID, nil, &v); err != nil {
				t.Fatal(err)
			}
			return v.Online
		}
		ca := env.Dial(t, a)
		if online() {
			t.Fatal("bob online before connecting")
		}

		b1 := env.Dial(t, b)
		p := servertest.Next(t, ca, wait, protocol.TypePresence)
		if p.User != b.ID || p.Status != "online" {
			t.Fatalf("presence = %+v", p)
		}
		if !online() {
			t.Fatal("REST says bob offline with a session open")
		}
		b2 := env.Dial(t, b)
		m, err := b2.Send(ctx, room.ID, "second session")
		if err != nil {
			t.Fatal(err)
		}
		expectNoPresenceBefore(t, ca, m.ID) // no second "online", no duplicate for the second room

		// Closing one of two sessions: still online.
		_ = b1.Close()
		waitSessions(t, env, 2)
		m, err = b2.Send(ctx, room.ID, "still here")
		if err != nil {
			t.Fatal(err)
		}
		expectNoPresenceBefore(t, ca, m.ID)
		if !online() {
			t.Fatal("REST says bob offline with one session left")
		}

		// Closing the last: offline, once.
		_ = b2.Close()
		p = servertest.Next(t, ca, wait, protocol.TypePresence)
		if p.User != b.ID || p.Status != "offline" {
			t.Fatalf("presence = %+v", p)
		}
		waitSessions(t, env, 1)
		if online() {
			t.Fatal("REST says bob online with no sessions")
		}
		// Alice's own message comes back to her session as an event after
		// anything queued before it: no second offline frame.
		own, err := ca.Send(ctx, room.ID, "marker")
		if err != nil {
			t.Fatal(err)
		}
		expectNoPresenceBefore(t, ca, own.ID)
	})
}

// TestDeliveryRightAfterDial: once Dial returns, the session receives every
// event of its rooms — the session is subscribed before the handshake
// completes, not some time after.
func TestDeliveryRightAfterDial(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
		room, _ := a.API.CreateRoom(ctx, "quick", "private", "bob")
		ca := env.Dial(t, a)
		for i := 0; i < 20; i++ {
			cb := env.Dial(t, b)
			ack, err := ca.Send(ctx, room.ID, "right away")
			if err != nil {
				t.Fatal(err)
			}
			servertest.NextWhere(t, cb, wait, "message sent right after dialing", func(f protocol.Frame) bool {
				return f.Type == protocol.TypeMessage && f.ID == ack.ID
			})
			_ = cb.Close()
		}
	})
}

// A session added to a room while connected (REST add, not a WS join) leaves
// that room when it closes: the room's members see it go offline and the
// closed session is no longer a subscriber.
func TestClosedSessionLeavesRoomsJoinedWhileConnected(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
		room, err := a.API.CreateRoom(ctx, "later", "private")
		if err != nil {
			t.Fatal(err)
		}
		cb := env.Dial(t, b) // bob shares no room with alice yet
		ca := env.Dial(t, a)
		if err := a.API.AddMember(ctx, room.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		// bob's open session now receives the room's messages.
		ack, err := ca.Send(ctx, room.ID, "welcome bob")
		if err != nil {
			t.Fatal(err)
		}
		servertest.NextWhere(t, cb, wait, "message in the new room", func(f protocol.Frame) bool { return f.ID == ack.ID })
		cb.Close()
		waitSessions(t, env, 1)
		p := servertest.NextWhere(t, ca, wait, "bob offline", func(f protocol.Frame) bool {
			return f.Type == protocol.TypePresence && f.User == b.ID
		})
		if p.Status != "offline" {
			t.Fatalf("presence = %+v", p)
		}
	})
}
