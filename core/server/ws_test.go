package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// rawDial opens a WebSocket with no client logic on top, for tests that
// must control reading, pings and pongs themselves.
func rawDial(t *testing.T, env *servertest.Env, token string, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	d.Subprotocols = []string{protocol.Subprotocol}
	c, resp, err := d.Dial(env.WSURL, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUntilGoodbye reads raw frames until the goodbye frame and then expects
// the close; it returns the goodbye and every frame before it.
func readUntilGoodbye(t *testing.T, c *websocket.Conn) (protocol.Frame, []protocol.Frame) {
	t.Helper()
	var before []protocol.Frame
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("connection ended without goodbye after %d frames: %v", len(before), err)
		}
		var f protocol.Frame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		if f.Type == protocol.TypeGoodbye {
			if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway, websocket.ClosePolicyViolation, websocket.CloseNormalClosure) {
				t.Fatalf("after goodbye: %v, want a close frame", err)
			}
			return f, before
		}
		before = append(before, f)
	}
}

// TestDrain: on shutdown /readyz and new handshakes answer 503 while
// sessions drain; every session gets the frames already queued, then
// goodbye{shutdown, reconnect_after_ms>0}; after a restart on the same data
// a client syncs exactly what it missed and re-sent refs dedupe.
func TestDrain(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.DSN(t)
			data := t.TempDir()
			cfg := func(c *server.Config) { c.DataDir = data; c.DrainTimeout = 10 * time.Second }
			env := servertest.Start(t, servertest.Options{DSN: dsn, Config: cfg})
			ctx := ctx(t)
			a, bob, carl := env.NewUser(t, "alice"), env.NewUser(t, "bob"), env.NewUser(t, "carl")
			room, _ := a.API.CreateRoom(ctx, "drain", "private", "bob")
			ca := env.Dial(t, a)
			// bob reads raw frames so nothing client-side reorders them.
			rb := rawDial(t, env, bob.Token, nil)
			// carl never reads: his session lingers until the server's close
			// deadline, which keeps the drain open long enough to observe it.
			rawDial(t, env, carl.Token, nil)

			const n = 300
			for i := 0; i < n; i++ {
				txt := fmt.Sprintf("d%03d", i)
				if err := ca.Write(protocol.ClientFrame{Type: "send", Room: room.ID, Text: &txt, Ref: "d" + strconv.Itoa(i)}); err != nil {
					t.Fatal(err)
				}
			}
			servertest.Next(t, ca, wait, "ack") // sends are flowing
			stopped := make(chan error, 1)
			go func() { stopped <- env.Stop() }()

			// While draining: /readyz and handshakes say 503.
			deadline := time.Now().Add(wait)
			for {
				st, _ := get(t, env.URL+"/readyz")
				if st == 503 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz = %d during drain", st)
				}
				time.Sleep(2 * time.Millisecond)
			}
			_, err := client.Dial(ctx, env.WSURL, client.Options{Token: a.Token})
			var he *client.HandshakeError
			if !errors.As(err, &he) || he.Status != 503 || he.Body.Code != "unavailable" {
				t.Fatalf("handshake during drain: %v, want 503 unavailable", err)
			}

			gb, frames := readUntilGoodbye(t, rb)
			if gb.Reason != protocol.ReasonShutdown || gb.ReconnectMs <= 0 {
				t.Fatalf("goodbye = %+v", gb)
			}
			var bobLast int64
			for _, f := range frames {
				if f.Type != protocol.TypeMessage {
					continue
				}
				if f.Seq != bobLast+1 {
					t.Fatalf("bob got seq %d after %d: queued frames were dropped", f.Seq, bobLast)
				}
				bobLast = f.Seq
			}
			acked := 0
			for ev := range ca.Events() {
				if ev.Type == protocol.TypeAck {
					acked++
				}
			}
			if g := ca.Goodbye(); g == nil || g.Reason != protocol.ReasonShutdown || g.ReconnectMs <= 0 {
				t.Fatalf("alice's goodbye = %+v", g)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("drain: %v", err)
			}

			// Restart on the same data.
			env2 := servertest.Start(t, servertest.Options{DSN: dsn, Config: cfg})
			a.API.Base, bob.API.Base = env2.URL, env2.URL
			if _, err := bob.API.Login(ctx, "bob", "password-bob"); err != nil {
				t.Fatal(err)
			}
			bob.Token = bob.API.Token
			if _, err := a.API.Login(ctx, "alice", "password-alice"); err != nil {
				t.Fatal(err)
			}
			a.Token = a.API.Token
			hist, err := a.API.HistoryFrom(ctx, room.ID, 0, 200)
			if err != nil {
				t.Fatal(err)
			}
			more, _ := a.API.HistoryFrom(ctx, room.ID, 200, 200)
			hist = append(hist, more...)
			committed := len(hist)
			if committed < acked || int64(committed) < bobLast {
				t.Fatalf("after drain: %d committed, %d acked, bob saw %d", committed, acked, bobLast)
			}
			cb := env2.Dial(t, bob)
			got, err := cb.Sync(ctx, room.ID, bobLast)
			if err != nil || len(got) != committed-int(bobLast) {
				t.Fatalf("bob's sync from %d: %d events (%v), want %d", bobLast, len(got), err, committed-int(bobLast))
			}
			ca2 := env2.Dial(t, a)
			for i := 0; i < n; i++ {
				if _, err := ca2.Send(ctx, room.ID, fmt.Sprintf("d%03d", i), client.SendOptions{Ref: "d" + strconv.Itoa(i)}); err != nil {
					t.Fatal(err)
				}
			}
			hist, _ = a.API.HistoryFrom(ctx, room.ID, 0, 200)
			more, _ = a.API.HistoryFrom(ctx, room.ID, 200, 200)
			hist = append(hist, more...)
			for i, m := range hist {
				if m.Seq != int64(i+1) || m.Text != fmt.Sprintf("d%03d", i) {
					t.Fatalf("after re-send, message %d = seq %d %q", i, m.Seq, m.Text)
				}
			}
			if len(hist) != n {
				t.Fatalf("after re-send: %d messages, want %d", len(hist), n)
			}
			t.Logf("drain: %d sends pipelined, %d acked, %d committed, bob saw %d before goodbye", n, acked, committed, bobLast)
		})
	}
}

// TestTLS: with a certificate the server speaks https and wss only.
func TestTLS(t *testing.T) {
	certFile, keyFile, ctls := servertest.SelfSigned(t)
	env := servertest.Start(t, servertest.Options{ClientTLS: ctls, Config: func(c *server.Config) {
		c.TLSCert, c.TLSKey = certFile, keyFile
	}})
	if !strings.HasPrefix(env.WSURL, "wss://") {
		t.Fatalf("WSURL = %s", env.WSURL)
	}
	ctx := ctx(t)
	a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
	room, err := a.API.CreateRoom(ctx, "secure", "private", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := env.Dial(t, a), env.Dial(t, b)
	ack, err := ca.Send(ctx, room.ID, "over wss")
	if err != nil {
		t.Fatal(err)
	}
	if m := servertest.Next(t, cb, wait, "message"); m.ID != ack.ID || *m.Text != "over wss" {
		t.Fatalf("bob got %+v", m)
	}
	// A browser on the server's own https origin is allowed.
	c, err := client.Dial(ctx, env.WSURL, client.Options{Token: a.Token, BrowserStyle: true, Origin: env.URL, TLSConfig: ctls})
	if err != nil {
		t.Fatalf("browser-style wss from own origin: %v", err)
	}
	c.Close()
	// Plain ws:// to the TLS port and an untrusted client both fail.
	plain := "ws://" + strings.TrimPrefix(env.WSURL, "wss://")
	if c, err := client.Dial(ctx, plain, client.Options{Token: a.Token}); err == nil {
		c.Close()
		t.Fatal("plain ws:// to a TLS listener worked")
	}
	if c, err := client.Dial(ctx, env.WSURL, client.Options{Token: a.Token}); err == nil {
		c.Close()
		t.Fatal("a client that does not trust the certificate connected")
	}
}

// TestSlowConsumer: a session that stops reading is closed with goodbye
// slow_consumer once its bounded queue fills; the sender and other readers
// are served throughout.
func TestSlowConsumer(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.QueueFrames, c.QueueBytes = 64, 256<<10
	}})
	ctx := ctx(t)
	a, s, r := env.NewUser(t, "alice"), env.NewUser(t, "slow"), env.NewUser(t, "reader")
	room, _ := a.API.CreateRoom(ctx, "firehose", "private", "slow", "reader")
	ca, cr := env.Dial(t, a), env.Dial(t, r)
	// A tiny receive buffer so the kernel does not absorb megabytes first.
	d := &websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}).DialContext}
	slow := rawDial(t, env, s.Token, d)

	text := strings.Repeat("x", 8<<10)
	var readerGot atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for ev := range cr.Events() {
			if ev.Type == protocol.TypeMessage {
				if ev.Seq != readerGot.Load()+1 {
					t.Errorf("reader got seq %d after %d", ev.Seq, readerGot.Load())
				}
				readerGot.Store(ev.Seq)
			}
		}
	}()
	sent := 0
	for metric(t, env, "unhidra_ws_slow_consumers_total") < 1 {
		if sent >= 5000 {
			t.Fatalf("no slow consumer after %d sends of 8 KiB", sent)
		}
		for i := 0; i < 20; i++ {
			if _, err := ca.Send(ctx, room.ID, text); err != nil {
				t.Fatalf("sender was not served: %v", err)
			}
			sent++
		}
	}
	// The others are still served.
	if err := ca.Ping(ctx); err != nil {
		t.Fatalf("sender after slow consumer: %v", err)
	}
	last, err := ca.Send(ctx, room.ID, "after")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for readerGot.Load() < last.Seq {
		if time.Now().After(deadline) {
			t.Fatalf("reader got up to seq %d of %d", readerGot.Load(), last.Seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The slow client, reading at last, finds goodbye slow_consumer after
	// what the kernel held, then the close.
	gb, before := readUntilGoodbye(t, slow)
	if gb.Reason != protocol.ReasonSlowConsumer {
		t.Fatalf("goodbye = %+v", gb)
	}
	if len(before) == 0 || len(before) >= sent {
		t.Fatalf("slow client read %d frames of %d before goodbye", len(before), sent)
	}
	if got := metric(t, env, "unhidra_ws_queue_drops_total"); got < 1 {
		t.Fatalf("queue_drops_total = %v", got)
	}
	t.Logf("slow consumer closed after %d sends; it had read %d frames", sent, len(before))
	cr.Close()
	<-readerDone
}

// TestKeepaliveAndIdle: the server pings; a client that answers stays
// connected well past the idle timeout; a client that stays silent (no
// pongs, no frames) is closed with goodbye idle_timeout.
func TestKeepaliveAndIdle(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.PingInterval, c.IdleTimeout = 100*time.Millisecond, 2*time.Second
	}})
	a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")

	// Alive: answers pings (what every WebSocket library does by default).
	alive := rawDial(t, env, a.Token, nil)
	var pings atomic.Int64
	alive.SetPingHandler(func(data string) error {
		pings.Add(1)
		return alive.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	readErr := make(chan error, 1)
	pongs := make(chan protocol.Frame, 1)
	go func() {
		for {
			_, data, err := alive.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			var f protocol.Frame
			_ = json.Unmarshal(data, &f)
			if f.Type == protocol.TypePong {
				pongs <- f
			}
		}
	}()

	// Silent: reads (so it sees pings) but never answers them.
	silent := rawDial(t, env, b.Token, nil)
	silent.SetPingHandler(func(string) error { return nil })
	gb, _ := readUntilGoodbye(t, silent)
	if gb.Reason != protocol.ReasonIdle {
		t.Fatalf("silent client's goodbye = %+v", gb)
	}
	// By now more than the idle timeout has passed: the answering client
	// must have seen many pings and still be connected.
	for pings.Load() < 30 { // 3 s of pings: well past the idle timeout
		select {
		case err := <-readErr:
			t.Fatalf("answering client was closed after %d pings: %v", pings.Load(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := alive.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","ref":"k"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-pongs:
		if f.Ref != "k" {
			t.Fatalf("pong = %+v", f)
		}
	case err := <-readErr:
		t.Fatalf("answering client closed: %v", err)
	case <-time.After(wait):
		t.Fatal("no pong")
	}
	waitSessions(t, env, 1)
}

// TestSyncLargeMessages: a sync never overruns the session's own queue
// bound; the server pages it (synced.more) instead of closing the client as
// a slow consumer.
func TestSyncLargeMessages(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.QueueFrames, c.QueueBytes = 64, 256<<10
	}})
	ctx := ctx(t)
	a := env.NewUser(t, "alice")
	room, _ := a.API.CreateRoom(ctx, "big", "private")
	text := strings.Repeat("y", 15<<10)
	for i := 0; i < 100; i++ { // 1.5 MiB of history, 6× the queue bound
		if _, err := a.API.PostMessage(ctx, room.ID, text); err != nil {
			t.Fatal(err)
		}
	}
	c := env.Dial(t, a)
	got, err := c.Sync(ctx, room.ID, 0)
	if err != nil {
		t.Fatalf("sync: %v (goodbye %+v)", err, c.Goodbye())
	}
	if len(got) != 100 {
		t.Fatalf("sync returned %d events, want 100", len(got))
	}
	for i, f := range got {
		if f.Seq != int64(i+1) || f.Text == nil || len(*f.Text) != len(text) {
			t.Fatalf("event %d: seq %d", i, f.Seq)
		}
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("connection after sync: %v", err)
	}
}

// TestBinaryFrameRefused: protocol v1 is JSON text frames; a binary frame
// gets a bad_request error and the session stays up.
func TestBinaryFrameRefused(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	a := env.NewUser(t, "alice")
	c := rawDial(t, env, a.Token, nil)
	if err := c.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","ref":"after"}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var got []protocol.Frame
	for len(got) < 2 {
		var f protocol.Frame
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("after a binary frame: %v", err)
		}
		if f.Type == protocol.TypeError || f.Type == protocol.TypePong {
			got = append(got, f)
		}
	}
	if got[0].Type != protocol.TypeError || got[0].Code != protocol.CodeBadRequest || got[1].Type != protocol.TypePong || got[1].Ref != "after" {
		t.Fatalf("frames = %+v", got)
	}
}
