package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// A client that stops reading is a slow consumer: the server must end its
// session, not leave it open until the idle timeout. (fasthttp ignores Close
// on a hijacked connection until the handler returns, so the session used to
// linger with a blocked reader long after its writer gave up.)
func TestSlowConsumerIsDisconnected(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.IdleTimeout = 10 * time.Minute // only the slow-consumer policy may end the session
		c.PingInterval = 10 * time.Minute
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
	room, err := a.API.CreateRoom(ctx, "flood", "public")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.API.JoinRoom(ctx, room.ID); err != nil {
		t.Fatal(err)
	}
	// Bob's client buffers one event and then stops reading the socket.
	slow, err := client.Dial(ctx, env.WSURL, client.Options{Token: b.Token, Events: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast := env.Dial(t, a)
	go func() {
		for range fast.Events() { // Alice keeps up with her own echoes
		}
	}()
	text := strings.Repeat("x", 16000)
	for i := 0; slowConsumers(t, env) == 0; i++ {
		if i == 20000 {
			t.Fatal("20000 messages sent and the server never found bob slow")
		}
		if err := fast.Write(protocol.ClientFrame{Type: protocol.TypeSend, Room: room.ID, Text: &text}); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if err := fast.Ping(ctx); err != nil { // let the server catch up
				t.Fatal(err)
			}
		}
	}
	// The session must end without help from bob (he still reads nothing):
	// its writer gives up after the write timeout and the reader must follow.
	for env.Server.Gateway().Sessions() != 1 {
		select {
		case <-ctx.Done():
			t.Fatalf("slow consumer still has a session (%d open) after the server gave up on it", env.Server.Gateway().Sessions())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// And bob's client sees the connection end once it reads again.
	go func() {
		for range slow.Events() {
		}
	}()
	select {
	case <-slow.Done():
	case <-ctx.Done():
		t.Fatal("bob's connection is still open")
	}
	if err := fast.Ping(ctx); err != nil {
		t.Fatalf("alice's session suffered: %v", err)
	}
}

func slowConsumers(t *testing.T, env *servertest.Env) int {
	t.Helper()
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "unhidra_ws_slow_consumers_total "); ok {
			return map[bool]int{true: 0, false: 1}[v == "0"]
		}
	}
	t.Fatal("no unhidra_ws_slow_consumers_total in /metrics")
	return 0
}

// A session that sends nothing for the idle timeout is told why before it is
// closed: goodbye{idle_timeout} and close 1001 (it used to be a bare TCP close).
func TestIdleSessionGetsGoodbye(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.IdleTimeout = 2 * time.Second
		c.PingInterval = 10 * time.Minute // no pings, so no pongs keep it alive
	}})
	u := env.NewUser(t, "sleepy")
	c := env.Dial(t, u)
	select {
	case <-c.Done():
	case <-time.After(time.Minute):
		t.Fatal("idle session was not closed")
	}
	g := c.Goodbye()
	if g == nil || g.Reason != protocol.ReasonIdle {
		t.Fatalf("goodbye = %+v (connection error %v), want reason %s", g, c.Err(), protocol.ReasonIdle)
	}
	if !strings.Contains(c.Err().Error(), "1001") {
		t.Fatalf("close = %v, want close code 1001", c.Err())
	}
}
