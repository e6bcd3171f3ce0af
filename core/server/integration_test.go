package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// wait bounds how long a test waits for an event; generous because CI machines
// can be heavily loaded (it is a hang guard, not a latency assertion).
const wait = 15 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// eachBackend runs f against SQLite and Postgres.
func eachBackend(t *testing.T, f func(t *testing.T, env *servertest.Env)) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			env := servertest.Start(t, servertest.Options{DSN: b.DSN(t)})
			f(t, env)
		})
	}
}

// TestSendSyncScenario is "Done when" 2: A's send is acked and B receives it;
// B disconnects, A sends 100 more, B's sync returns exactly those 100.
func TestSendSyncScenario(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
		room, err := a.API.CreateRoom(ctx, "general", "public")
		if err != nil {
			t.Fatal(err)
		}
		ca, cb := env.Dial(t, a), env.Dial(t, b)
		if _, err := cb.Join(ctx, room.ID); err != nil {
			t.Fatal(err)
		}
		ack, err := ca.Send(ctx, room.ID, "hello bob")
		if err != nil {
			t.Fatal(err)
		}
		if ack.Type != "ack" || ack.Seq != 1 || ack.ID == "" || ack.Room != room.ID || ack.TS == 0 {
			t.Fatalf("ack = %+v", ack)
		}
		m := servertest.Next(t, cb, wait, "message")
		if m.ID != ack.ID || *m.Text != "hello bob" || m.From != a.ID || m.Seq != 1 {
			t.Fatalf("B got %+v", m)
		}
		last := cb.LastSeq(room.ID)
		cb.Close()
		var want []string
		for i := 0; i < 100; i++ {
			ack, err := ca.Send(ctx, room.ID, fmt.Sprintf("missed %d", i))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ack.ID)
		}
		cb2 := env.Dial(t, b)
		got, err := cb2.Sync(ctx, room.ID, last)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 100 {
			t.Fatalf("sync returned %d events, want 100", len(got))
		}
		for i, f := range got {
			if f.Type != "message" || f.ID != want[i] || f.Seq != last+int64(i)+1 || *f.Text != fmt.Sprintf("missed %d", i) {
				t.Fatalf("event %d = %+v", i, f)
			}
		}
		// Paging: a sync with a small limit says there is more.
		r, err := cb2.Call(ctx, protocol.ClientFrame{Type: "sync", Room: room.ID, After: &last, Limit: 10})
		if err != nil || r.Type != "synced" || r.Upto != last+10 || !r.More {
			t.Fatalf("paged sync = %+v, %v", r, err)
		}
	})
}

func TestEveryFrameType(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
		room, err := a.API.CreateRoom(ctx, "team", "private", "bob")
		if err != nil {
			t.Fatal(err)
		}
		ca, cb := env.Dial(t, a), env.Dial(t, b)
		if err := ca.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		// send with meta, then a thread reply
		root, err := ca.Send(ctx, room.ID, "root", client.SendOptions{Meta: json.RawMessage(`{"k":"v"}`)})
		if err != nil {
			t.Fatal(err)
		}
		m := servertest.Next(t, cb, wait, "message")
		if string(m.Meta) != `{"k":"v"}` {
			t.Fatalf("meta = %s", m.Meta)
		}
		reply, err := cb.Send(ctx, room.ID, "in thread", client.SendOptions{Thread: root.ID})
		if err != nil {
			t.Fatal(err)
		}
		m = servertest.NextWhere(t, ca, wait, "thread reply", func(f protocol.Frame) bool { return f.ID == reply.ID })
		if m.Thread != root.ID || m.ID != reply.ID {
			t.Fatalf("thread reply = %+v", m)
		}
		// edit keeps history
		if _, err := ca.Edit(ctx, room.ID, root.ID, "root v2"); err != nil {
			t.Fatal(err)
		}
		e := servertest.Next(t, cb, wait, "edited")
		if e.ID != root.ID || *e.Text != "root v2" || e.Seq != 3 {
			t.Fatalf("edited = %+v", e)
		}
		var edits struct {
			Edits []struct {
				Old string `json:"old_text"`
			} `json:"edits"`
		}
		if err := b.API.Do(ctx, "GET", "/v1/rooms/"+room.ID+"/messages/"+root.ID+"/edits", nil, &edits); err != nil || len(edits.Edits) != 1 || edits.Edits[0].Old != "root" {
			t.Fatalf("edit history = %+v, %v", edits, err)
		}
		// only the author edits
		if _, err := cb.Edit(ctx, room.ID, root.ID, "hijack"); !isCode(err, "forbidden") {
			t.Fatalf("bob editing alice's message: %v", err)
		}
		// reactions, on and off
		if _, err := cb.React(ctx, room.ID, root.ID, "👍", true); err != nil {
			t.Fatal(err)
		}
		r := servertest.Next(t, ca, wait, "reaction")
		if r.Emoji != "👍" || r.User != b.ID || r.On == nil || !*r.On {
			t.Fatalf("reaction = %+v", r)
		}
		if _, err := cb.React(ctx, room.ID, root.ID, "👍", false); err != nil {
			t.Fatal(err)
		}
		if r = servertest.Next(t, ca, wait, "reaction"); *r.On {
			t.Fatalf("reaction off = %+v", r)
		}
		// typing reaches the other user, not the typer
		if err := cb.Typing(room.ID); err != nil {
			t.Fatal(err)
		}
		if ty := servertest.Next(t, ca, wait, "typing"); ty.User != b.ID || ty.Room != room.ID {
			t.Fatalf("typing = %+v", ty)
		}
		// read receipts
		if _, err := cb.Read(ctx, room.ID, 2); err != nil {
			t.Fatal(err)
		}
		if rc := servertest.Next(t, ca, wait, "receipt"); rc.User != b.ID || rc.Seq != 2 {
			t.Fatalf("receipt = %+v", rc)
		}
		// delete is a tombstone: the row stays, the text goes, seq goes on
		del, err := ca.Delete(ctx, room.ID, root.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := servertest.Next(t, cb, wait, "deleted"); d.ID != root.ID || d.Seq != del.Seq {
			t.Fatalf("deleted = %+v", d)
		}
		hist, err := b.API.History(ctx, room.ID, 0, 0, 50)
		if err != nil || len(hist) != 2 || !hist[0].Deleted || hist[0].Text != "" || hist[1].Text != "in thread" {
			t.Fatalf("history after delete = %+v, %v", hist, err)
		}
		// sync from 0 replays the log with the deleted text scrubbed
		evs, err := cb.Sync(ctx, room.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		kinds := ""
		for i, ev := range evs {
			if ev.Seq != int64(i+1) {
				t.Fatalf("gap in sync at %d: %+v", i, ev)
			}
			if ev.ID == root.ID && ev.Text != nil && *ev.Text != "" {
				t.Fatalf("deleted text leaked in sync: %+v", ev)
			}
			kinds += ev.Type[:1]
		}
		if kinds != "mmerrd" {
			t.Fatalf("sync kinds = %q, want message,message,edited,reaction,reaction,deleted", kinds)
		}
		// leave: no more deliveries to bob
		if _, err := cb.Leave(ctx, room.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := ca.Send(ctx, room.ID, "after bob left"); err != nil {
			t.Fatal(err)
		}
		if _, err := cb.Send(ctx, room.ID, "still here?"); !isCode(err, "not_found") {
			t.Fatalf("send after leaving a private room: %v", err)
		}
	})
}

func isCode(err error, code string) bool {
	e, ok := err.(*client.Error)
	return ok && e.Code == code
}

// TestIdempotentSend: a send repeated with the same ref returns the first
// ack and stores nothing new — on the same connection and after reconnecting.
func TestIdempotentSend(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a := env.NewUser(t, "alice")
		room, _ := a.API.CreateRoom(ctx, "r", "public")
		c := env.Dial(t, a)
		first, err := c.Send(ctx, room.ID, "once", client.SendOptions{Ref: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.Send(ctx, room.ID, "once", client.SendOptions{Ref: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != first.ID || again.Seq != first.Seq || !again.Duplicate {
			t.Fatalf("repeat ack %+v, first %+v", again, first)
		}
		// Pipelined duplicates in one batch.
		for i := 0; i < 5; i++ {
			txt := "burst"
			_ = c.Write(protocol.ClientFrame{Type: "send", Room: room.ID, Text: &txt, Ref: "k2"})
		}
		c2 := env.Dial(t, a)
		third, err := c2.Send(ctx, room.ID, "once", client.SendOptions{Ref: "k1"})
		if err != nil || third.ID != first.ID {
			t.Fatalf("repeat after reconnect: %+v %v", third, err)
		}
		time.Sleep(200 * time.Millisecond)
		hist, err := a.API.History(ctx, room.ID, 0, 0, 50)
		if err != nil || len(hist) != 2 {
			t.Fatalf("history has %d messages, want 2: %v", len(hist), err)
		}
	})
}

// TestBadInput: each bad frame gets an error with the right code, the
// connection stays up, and nothing is written.
func TestBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
		room, _ := a.API.CreateRoom(ctx, "r", "private")
		other, _ := b.API.CreateRoom(ctx, "secret", "private")
		c := env.Dial(t, a)
		cases := []struct {
			name, frame, code string
		}{
			{"malformed json", `{"type":"send",`, "bad_request"},
			{"not an object", `[1,2,3]`, "bad_request"},
			{"unknown type", `{"type":"teleport","ref":"x"}`, "bad_request"},
			{"no type", `{"ref":"x"}`, "bad_request"},
			{"send without room", `{"type":"send","ref":"x","text":"hi"}`, "bad_request"},
			{"send without text", `{"type":"send","ref":"x","room":"` + room.ID + `"}`, "bad_request"},
			{"empty text", `{"type":"send","ref":"x","room":"` + room.ID + `","text":"  "}`, "bad_request"},
			{"send to room not a member", `{"type":"send","ref":"x","room":"` + other.ID + `","text":"hi"}`, "not_found"},
			{"send to missing room", `{"type":"send","ref":"x","room":"00000000-0000-0000-0000-00000000dead","text":"hi"}`, "not_found"},
			{"send to garbage room id", `{"type":"send","ref":"x","room":"../../etc","text":"hi"}`, "not_found"},
			{"oversize text", `{"type":"send","ref":"x","room":"` + room.ID + `","text":"` + string(make40k()) + `"}`, "too_large"},
			{"meta not object", `{"type":"send","ref":"x","room":"` + room.ID + `","text":"hi","meta":[1]}`, "bad_request"},
			{"sync future seq", `{"type":"sync","ref":"x","room":"` + room.ID + `","after":999}`, "bad_request"},
			{"sync negative", `{"type":"sync","ref":"x","room":"` + room.ID + `","after":-1}`, "bad_request"},
			{"edit missing message", `{"type":"edit","ref":"x","room":"` + room.ID + `","id":"00000000-0000-0000-0000-000000000000","text":"x"}`, "not_found"},
			{"react empty emoji", `{"type":"react","ref":"x","room":"` + room.ID + `","id":"00000000-0000-0000-0000-000000000000","emoji":""}`, "bad_request"},
			{"read beyond last", `{"type":"read","ref":"x","room":"` + room.ID + `","seq":5}`, "bad_request"},
			{"join private room", `{"type":"join","ref":"x","room":"` + other.ID + `"}`, "not_found"},
		}
		for _, tc := range cases {
			if err := c.WriteRaw([]byte(tc.frame)); err != nil {
				t.Fatalf("%s: write: %v", tc.name, err)
			}
			f := servertest.Next(t, c, wait, "error")
			if f.Code != tc.code {
				t.Errorf("%s: code %q (%s), want %q", tc.name, f.Code, f.Message, tc.code)
			}
		}
		// refs are echoed on errors
		if _, err := c.Call(ctx, protocol.ClientFrame{Type: "nope", Ref: "my-ref"}); !isCode(err, "bad_request") {
			t.Fatalf("error reply did not echo ref: %v", err)
		}
		// invalid UTF-8 inside a text frame
		if err := c.WriteRaw([]byte("{\"type\":\"send\",\"text\":\"\xff\xfe\"}")); err != nil {
			t.Fatal(err)
		}
		if f := servertest.Next(t, c, wait, "error"); f.Code != "bad_request" {
			t.Fatalf("invalid utf-8: %+v", f)
		}
		// The connection is still up and nothing was written.
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("connection dropped after bad input: %v", err)
		}
		hist, err := a.API.History(ctx, room.ID, 0, 0, 50)
		if err != nil || len(hist) != 0 {
			t.Fatalf("bad input wrote %d messages (%v)", len(hist), err)
		}
		// An oversize frame closes the connection with 1009.
		big := make([]byte, env.Config.MaxFrame+10)
		for i := range big {
			big[i] = 'a'
		}
		_ = c.WriteRaw(big)
		select {
		case <-c.Done():
		case <-time.After(wait):
			t.Fatal("oversize frame did not close the connection")
		}
		if ce, ok := c.Err().(interface{ Error() string }); !ok || !contains(ce.Error(), "1009") {
			t.Fatalf("close reason = %v, want close code 1009", c.Err())
		}
	})
}

func make40k() []byte {
	b := make([]byte, 40<<10)
	for i := range b {
		b[i] = 'x'
	}
	return b
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}
