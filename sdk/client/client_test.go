package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
)

// The server keeps a send's ref as its idempotency key for good, so refs the
// client generates must not repeat across connections: a reconnected bot's
// sends used to come back as duplicates of its first connection's and were
// silently not stored.
func TestGeneratedRefsDoNotRepeatAcrossConnections(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := env.NewUser(t, "bot")
	room, err := u.API.CreateRoom(ctx, "general", "public")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, text := range []string{"first connection", "second connection", "third connection"} {
		c := env.Dial(t, u)
		ack, err := c.Send(ctx, room.ID, text)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate || seen[ack.ID] || ack.Seq != int64(i+1) {
			t.Fatalf("connection %d: ack %+v; want a new message with seq %d", i+1, ack, i+1)
		}
		seen[ack.ID] = true
		c.Close()
	}
	ms, err := u.API.History(ctx, room.ID, 0, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0].Text != "first connection" || ms[2].Text != "third connection" {
		t.Fatalf("history = %+v, want the three messages", ms)
	}
}
