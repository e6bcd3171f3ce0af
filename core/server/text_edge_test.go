package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/protocol"
)

func strp(s string) *string { return &s }

// TestUnstorableStringsAreRefusedAtTheEdge is issue 12 item 3: NUL and
// invalid UTF-8 get bad_request on WebSocket and REST alike, on both
// backends, and nothing of them is stored; a User-Agent is not refused but
// stored as valid UTF-8 cut on a rune boundary.
func TestUnstorableStringsAreRefusedAtTheEdge(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a := env.NewUser(t, "alice")
		room, err := a.API.CreateRoom(ctx, "general", "public")
		if err != nil {
			t.Fatal(err)
		}
		c := env.Dial(t, a)
		first, err := c.Send(ctx, room.ID, "hello")
		if err != nil {
			t.Fatal(err)
		}
		ws := map[string]protocol.ClientFrame{
			"send text":   {Type: protocol.TypeSend, Room: room.ID, Text: strp("a\x00b")},
			"send NUL":    {Type: protocol.TypeSend, Room: room.ID, Text: strp("\x00")},
			"send ref":    {Type: protocol.TypeSend, Room: room.ID, Text: strp("ok"), Ref: "r\x00"},
			"send meta":   {Type: protocol.TypeSend, Room: room.ID, Text: strp("ok"), Meta: json.RawMessage(`{"k":"\u0000"}`)},
			"edit text":   {Type: protocol.TypeEdit, Room: room.ID, ID: first.ID, Text: strp("x\x00")},
			"react emoji": {Type: protocol.TypeReact, Room: room.ID, ID: first.ID, Emoji: "+\x00"},
		}
		for name, f := range ws {
			_, err := c.Call(ctx, f)
			servertest.WantCode(t, "WebSocket "+name, err, protocol.CodeBadRequest)
		}
		msgs := "/v1/rooms/" + room.ID + "/messages"
		rest := []servertest.Request{
			{Method: "POST", Path: msgs, Body: []byte(`{"text":"a\u0000b"}`)},
			{Method: "POST", Path: msgs, Body: []byte("{\"text\":\"\xff\"}")},
			{Method: "POST", Path: msgs, Body: []byte(`{"text":"ok"}`), Header: map[string]string{"Idempotency-Key": "k\xff"}},
			{Method: "PATCH", Path: msgs + "/" + first.ID, Body: []byte(`{"text":"\u0000"}`)},
			{Method: "PUT", Path: msgs + "/" + first.ID + "/reactions/%00"},
			{Method: "PUT", Path: msgs + "/" + first.ID + "/reactions/%ff"},
			{Method: "POST", Path: "/v1/rooms", Body: []byte(`{"name":"a\u0000","kind":"public"}`)},
			{Method: "PATCH", Path: "/v1/rooms/" + room.ID, Body: []byte(`{"topic":"t\u0000"}`)},
			{Method: "POST", Path: "/v1/devices", Body: []byte(`{"name":"pho\u0000ne"}`)},
			{Method: "GET", Path: "/v1/users?q=%00"},
			{Method: "GET", Path: "/v1/users?q=%ff"},
			{Method: "GET", Path: "/v1/users/%ff"},
			{Method: "GET", Path: "/v1/users/%00"},
			{Method: "POST", Path: "/v1/auth/login", Body: []byte(`{"username":"alice\u0000","password":"password-alice"}`)},
			{Method: "POST", Path: "/v1/auth/register", Body: []byte(`{"username":"bob","password":"password-bob","email":"b\u0000@example.com"}`)},
		}
		for _, r := range rest {
			if r.Path != "/v1/auth/login" && r.Path != "/v1/auth/register" {
				r.Token = a.Token
			}
			res := env.Do(t, r)
			if res.Status != 400 || res.Err.Code != protocol.CodeBadRequest {
				t.Errorf("%s %s %q: %d %s", r.Method, r.Path, r.Body, res.Status, res.Body)
			}
		}
		// A User-Agent is the client's, not the user's choice: it is made
		// valid and cut on a rune boundary, never refused.
		long := strings.Repeat("a", 255) + "éééé"
		for _, ua := range []string{"bad \xff\xfe agent", long} {
			res := env.Do(t, servertest.Request{Method: "POST", Path: "/v1/auth/login",
				Body: []byte(`{"username":"alice","password":"password-alice"}`), Header: map[string]string{"User-Agent": ua}})
			if res.Status != 200 {
				t.Fatalf("login with User-Agent %q: %d %s", ua, res.Status, res.Body)
			}
		}
		var ss struct {
			Sessions []struct {
				UserAgent string `json:"user_agent"`
			} `json:"sessions"`
		}
		if err := a.API.Do(ctx, "GET", "/v1/sessions", nil, &ss); err != nil {
			t.Fatal(err)
		}
		for _, s := range ss.Sessions {
			if !utf8.ValidString(s.UserAgent) || len(s.UserAgent) > 256 || strings.ContainsRune(s.UserAgent, 0) {
				t.Errorf("stored user agent %q", s.UserAgent)
			}
		}
		// Nothing was stored, and the room still works.
		if _, err := c.Send(ctx, room.ID, "still fine"); err != nil {
			t.Fatalf("send after the refusals: %v", err)
		}
		ms, err := a.API.HistoryFrom(ctx, room.ID, 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 || ms[0].Text != "hello" || ms[1].Text != "still fine" || ms[0].EditedTS != 0 || len(ms[0].Reactions) != 0 {
			t.Fatalf("history after the refusals: %+v", ms)
		}
	})
}

// TestRESTBodyRules is issue 12 item 9: "meta": null is absent (as on the
// WebSocket), trailing data after the JSON body is refused, and a text of
// nothing but invisible characters is blank.
func TestRESTBodyRules(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := ctx(t)
	a := env.NewUser(t, "alice")
	room, err := a.API.CreateRoom(ctx, "general", "public")
	if err != nil {
		t.Fatal(err)
	}
	msgs := "/v1/rooms/" + room.ID + "/messages"
	if res := env.Do(t, servertest.Request{Method: "POST", Path: msgs, Token: a.Token, Body: []byte(`{"text":"hi","meta":null}`)}); res.Status != 201 {
		t.Errorf(`"meta": null: %d %s`, res.Status, res.Body)
	}
	for _, body := range []string{
		`{"text":"two"} {"text":"bodies"}`,
		`{"text":"x"}garbage`,
		`{"text":"x"}]`,
		`{"text":"\u0000"}`,
		`{"text":"\u200b\u2060\ufeff"}`,
		`{"text":" \t\u0001\n"}`,
	} {
		res := env.Do(t, servertest.Request{Method: "POST", Path: msgs, Token: a.Token, Body: []byte(body)})
		if res.Status != 400 || res.Err.Code != protocol.CodeBadRequest {
			t.Errorf("body %s: %d %s", body, res.Status, res.Body)
		}
	}
	// Trailing whitespace is still one body.
	if res := env.Do(t, servertest.Request{Method: "POST", Path: msgs, Token: a.Token, Body: []byte("{\"text\":\"ok\"}\n ")}); res.Status != 201 {
		t.Errorf("body with trailing whitespace: %d %s", res.Status, res.Body)
	}
	ms, err := a.API.HistoryFrom(ctx, room.ID, 0, 50)
	if err != nil || len(ms) != 2 {
		t.Fatalf("stored %d messages (%v), want 2", len(ms), err)
	}
}
