package server_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// The session writer runs only while there is something to write; pings
// come from a timer. This checks that an idle session is still pinged
// repeatedly, still receives frames after idling, and on drain gets goodbye
// then a close frame.
func TestIdleSessionPingsDeliveryAndDrain(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.PingInterval = 50 * time.Millisecond
	}})
	u := env.NewUser(t, "idler")
	h := http.Header{"Authorization": {"Bearer " + u.Token}}
	ws, _, err := websocket.DefaultDialer.Dial(env.WSURL, h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var pings atomic.Int32
	ws.SetPingHandler(func(data string) error {
		pings.Add(1)
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	frames := make(chan protocol.Frame, 16)
	closed := make(chan error, 1)
	go func() {
		for {
			var f protocol.Frame
			if err := ws.ReadJSON(&f); err != nil {
				closed <- err
				close(frames)
				return
			}
			frames <- f
		}
	}()
	deadline := time.Now().Add(wait)
	for pings.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := pings.Load(); n < 3 {
		t.Fatalf("got %d pings in %s with a 50ms ping interval, want ≥ 3", n, wait)
	}
	// After idling, a frame still gets through (the writer restarts).
	if err := ws.WriteJSON(protocol.ClientFrame{Type: protocol.TypePing, Ref: "p1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-frames:
		if f.Type != protocol.TypePong || f.Ref != "p1" {
			t.Fatalf("want pong p1, got %+v", f)
		}
	case <-time.After(wait):
		t.Fatal("no pong")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- env.Stop() }()
	defer func() { <-stopped }() // before Cleanup stops env again
	select {
	case f := <-frames:
		if f.Type != protocol.TypeGoodbye || f.Reason != protocol.ReasonShutdown {
			t.Fatalf("want goodbye{shutdown}, got %+v", f)
		}
	case <-time.After(wait):
		t.Fatal("no goodbye on drain")
	}
	select {
	case err := <-closed:
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("want close 1001 after goodbye, got %v", err)
		}
	case <-time.After(wait):
		t.Fatal("no close frame after goodbye")
	}
}
