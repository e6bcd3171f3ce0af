package server_test

import (
	"testing"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// TestSearch is "Done when" 5: a message is found by a word in it, only by
// members of its room; prefixes match; search syntax in the query is inert;
// deleted messages and rooms one has left are not found.
func TestSearch(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b, c := env.NewUser(t, "alice"), env.NewUser(t, "bob"), env.NewUser(t, "carol")
		room, err := a.API.CreateRoom(ctx, "plans", "private", "bob")
		if err != nil {
			t.Fatal(err)
		}
		other, err := c.API.CreateRoom(ctx, "carols", "private")
		if err != nil {
			t.Fatal(err)
		}
		ca := env.Dial(t, a)
		hit, err := ca.Send(ctx, room.ID, "Meet at the lighthouse on Tuesday")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ca.Send(ctx, room.ID, "bring snacks"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.API.PostMessage(ctx, other.ID, "carol's own lighthouse notes"); err != nil {
			t.Fatal(err)
		}

		ids := func(ms []protocol.Message) []string {
			var out []string
			for _, m := range ms {
				out = append(out, m.ID)
			}
			return out
		}
		search := func(u servertest.User, q string) []protocol.Message {
			t.Helper()
			ms, err := u.API.Search(ctx, q)
			if err != nil {
				t.Fatalf("search %q as %s: %v", q, u.Username, err)
			}
			return ms
		}
		// Members find it, by a word, case-insensitively, and by prefix.
		for _, q := range []string{"lighthouse", "LIGHTHOUSE", "lightho", "tuesday lighthouse", "meet tues"} {
			for _, u := range []servertest.User{a, b} {
				ms := search(u, q)
				if len(ms) != 1 || ms[0].ID != hit.ID || ms[0].Room != room.ID || ms[0].Text != "Meet at the lighthouse on Tuesday" {
					t.Fatalf("%s searching %q got %v, want [%s]", u.Username, q, ids(ms), hit.ID)
				}
			}
		}
		// A non-member finds only her own room's message.
		if ms := search(c, "lighthouse"); len(ms) != 1 || ms[0].Room != other.ID {
			t.Fatalf("carol searching lighthouse got %+v", ms)
		}
		if ms := search(c, "tuesday"); len(ms) != 0 {
			t.Fatalf("non-member found %+v", ms)
		}
		// Search syntax is inert: no error, no widening.
		for _, q := range []string{`lighthouse OR snacks`, `"lighthouse`, `light*`, `NEAR(lighthouse snacks)`, `text:lighthouse`,
			`lighthouse & !x`, `lighthouse | snacks`, `(lighthouse`, `'`, `\`, `-snacks`, `^lighthouse`, `lighthouse:*`, `a:* | b`} {
			ms, err := b.API.Search(ctx, q)
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			for _, m := range ms {
				if m.Room != room.ID {
					t.Fatalf("search %q leaked %+v", q, m)
				}
			}
			if q == `lighthouse OR snacks` && len(ms) != 0 {
				t.Fatalf("OR was interpreted: %v", ids(ms))
			}
		}
		// Bad queries are refused with a clear error.
		for _, q := range []string{"", "   ", string(make([]byte, 300))} {
			_, err := b.API.Search(ctx, q)
			if ae, ok := err.(*client.APIError); !ok || ae.Status != 400 || ae.Code != "bad_request" {
				t.Fatalf("search %q: %v, want 400 bad_request", q, err)
			}
		}
		// Punctuation only: nothing to search for, but not an error.
		if ms := search(b, "!!! ???"); len(ms) != 0 {
			t.Fatalf("punctuation found %v", ids(ms))
		}
		// Edits are searchable by the new text, not the old.
		if _, err := ca.Edit(ctx, room.ID, hit.ID, "Meet at the harbour on Tuesday"); err != nil {
			t.Fatal(err)
		}
		if ms := search(b, "lighthouse"); len(ms) != 0 {
			t.Fatalf("old text still found after edit: %v", ids(ms))
		}
		if ms := search(b, "harbour"); len(ms) != 1 || ms[0].ID != hit.ID {
			t.Fatalf("new text not found after edit: %v", ids(ms))
		}
		// A deleted message is not found.
		if _, err := ca.Delete(ctx, room.ID, hit.ID); err != nil {
			t.Fatal(err)
		}
		if ms := search(a, "harbour"); len(ms) != 0 {
			t.Fatalf("deleted message found: %v", ids(ms))
		}
		// Leaving a room takes its messages out of one's search.
		if ms := search(b, "snacks"); len(ms) != 1 {
			t.Fatalf("snacks: %v", ids(ms))
		}
		if err := b.API.Do(ctx, "POST", "/v1/rooms/"+room.ID+"/leave", nil, nil); err != nil {
			t.Fatal(err)
		}
		if ms := search(b, "snacks"); len(ms) != 0 {
			t.Fatalf("found after leaving: %v", ids(ms))
		}
	})
}
