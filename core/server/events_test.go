package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/core/event"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// plainSub is a subscriber with no transport at all: what a plugin feed, a
// NATS bus or an MQTT bridge looks like to the broker.
type plainSub struct {
	id   uint64
	user string
	ch   chan *event.Event
}

func (p *plainSub) SessionID() uint64 { return p.id }
func (p *plainSub) UserID() string    { return p.user }
func (p *plainSub) Deliver(ev *event.Event) bool {
	select {
	case p.ch <- ev:
		return true
	default:
		return false
	}
}

// next returns the next event, failing after the hang guard.
func (p *plainSub) next(t *testing.T) *event.Event {
	t.Helper()
	select {
	case ev := <-p.ch:
		return ev
	case <-time.After(wait):
		t.Fatal("the plain subscriber got no event")
		return nil
	}
}

// rawText reads the next text frame of a raw WebSocket: the exact bytes the
// server framed.
func rawText(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for {
		mt, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read the raw WebSocket: %v", err)
		}
		if mt == websocket.TextMessage {
			return b
		}
	}
}

// Events are transport-neutral: a plain Go subscriber of the broker, in the
// same room as a WebSocket session, receives the same events in the same
// order, byte for byte — messages, edits, reactions, typing, receipts,
// presence, joined and left — and the broker reaches one user's sessions
// or one session, whatever kind each is.
func TestBrokerServesAPlainGoSubscriber(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	alice := env.NewUser(t, "alice")
	bob := env.NewUser(t, "bob")
	room, err := alice.API.CreateRoom(ctx, "neutral", "public")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.API.JoinRoom(ctx, room.ID); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(env.WSURL, http.Header{"Authorization": {"Bearer " + alice.Token}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	chat := env.Server.Chat()
	b := chat.Broker()
	sub := &plainSub{id: chat.NewSessionID(), user: "plain-observer", ch: make(chan *event.Event, 256)}
	b.Connect(sub)
	b.Subscribe(room.ID, sub)
	defer b.Disconnect(sub)

	// Bob does one of everything that reaches a room.
	bc := env.Dial(t, bob) // presence: online
	msg, err := bc.Send(ctx, room.ID, "hello, neutral world")
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error {
			_, err := bc.Call(ctx, protocol.ClientFrame{Type: protocol.TypeEdit, Room: room.ID, ID: msg.ID, Text: ptr("edited")})
			return err
		},
		func() error { _, err := bc.React(ctx, room.ID, msg.ID, "🎉", true); return err },
		func() error { return bc.Typing(room.ID) },
		func() error {
			_, err := bc.Call(ctx, protocol.ClientFrame{Type: protocol.TypeRead, Room: room.ID, Seq: &msg.Seq})
			return err
		},
		func() error { _, err := bc.Leave(ctx, room.ID); return err },
		func() error { _, err := bc.Join(ctx, room.ID); return err },
		func() error { _, err := bc.Send(ctx, room.ID, "the end"); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	var kinds []string
	for {
		wire := rawText(t, ws)
		ev := sub.next(t)
		if !bytes.Equal(wire, ev.Payload) {
			t.Fatalf("after %v: the WebSocket got %s, the plain subscriber %s", kinds, wire, ev.Payload)
		}
		kinds = append(kinds, ev.Kind)
		if ev.Kind == protocol.TypeMessage && strings.Contains(string(ev.Payload), "the end") {
			break
		}
	}
	want := "presence message edited reaction typing receipt left joined message"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("both received %q, want %q", got, want)
	}

	// One user's sessions, and one session: a Go-made event reaches the
	// WebSocket framed by the gateway, and the plain subscriber as is.
	custom := &event.Event{Kind: "test.custom", Payload: []byte(`{"type":"test.custom","n":1}`)}
	if n := b.PublishUser(alice.ID, custom); n != 1 {
		t.Fatalf("PublishUser(alice) reached %d sessions, want 1", n)
	}
	if got := rawText(t, ws); !bytes.Equal(got, custom.Payload) {
		t.Fatalf("alice's WebSocket got %s, want %s", got, custom.Payload)
	}
	if n := b.PublishSession(sub.id, custom); n != 1 {
		t.Fatalf("PublishSession(plain) reached %d, want 1", n)
	}
	if got := sub.next(t); got != custom {
		t.Fatalf("the plain subscriber got %+v, want the published event itself", got)
	}
	select {
	case ev := <-sub.ch:
		t.Fatalf("the plain subscriber got an extra event %s", ev.Payload)
	default:
	}
}

func ptr[T any](v T) *T { return &v }
