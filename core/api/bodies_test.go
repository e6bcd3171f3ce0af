package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/crc32"
	"maps"
	"reflect"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// noBody lists the routes other than GET that read no JSON body.
var noBody = []string{
	"DELETE /v1/sessions/:id", "DELETE /v1/devices/:id", "PUT /v1/me/blocks/:user", "DELETE /v1/me/blocks/:user",
	"DELETE /v1/orgs/:id/members/:user", "POST /v1/rooms/:id/join", "POST /v1/rooms/:id/leave",
	"DELETE /v1/rooms/:id/members/:user", "DELETE /v1/rooms/:id/messages/:mid",
	"PUT /v1/rooms/:id/messages/:mid/reactions/:emoji", "DELETE /v1/rooms/:id/messages/:mid/reactions/:emoji",
	"POST /v1/admin/users/:id/deactivate", "POST /v1/admin/users/:id/reactivate", "POST /v1/admin/users/:id/revoke-sessions",
	"DELETE /v1/admin/sessions/:id", "DELETE /v1/admin/users/:id/devices/:device", "DELETE /v1/admin/invites/:id",
	"POST /v1/admin/keys/rotate", "DELETE /v1/admin/roles/:name",
	"POST /v1/admin/plugins/reload", "POST /v1/admin/plugins/:id/enable", "POST /v1/admin/plugins/:id/disable",
}

// TestEveryBodyIsDeclared: each route other than GET either declares its
// body type in requestBodies (and so is fuzzed) or is listed in noBody.
func TestEveryBodyIsDeclared(t *testing.T) {
	a := New(Options{})
	app := fiber.New()
	a.Register(app)
	a.RegisterPluginAdmin(app, nil)
	routes := map[string]bool{}
	for _, r := range a.Routes() {
		key := r.Method + " " + r.Path
		routes[key] = true
		_, body := requestBodies[key]
		switch {
		case r.Method == "GET":
		case body && slices.Contains(noBody, key):
			t.Errorf("%s is in requestBodies and in noBody", key)
		case !body && !slices.Contains(noBody, key):
			t.Errorf("%s: declare its body type in requestBodies (bodies.go), or list it in noBody", key)
		}
	}
	for _, key := range slices.Concat(slices.Collect(maps.Keys(requestBodies)), noBody) {
		if !routes[key] {
			t.Errorf("%s is declared but not a route", key)
		}
	}
}

// bodySeeds are valid and tricky bodies per route; the fuzzer starts from
// them (and from testdata/fuzz/FuzzRequestBody).
var bodySeeds = map[string][]string{
	"POST /v1/auth/register":            {`{"username":"alice","password":"correct-horse","email":"a@example.com","invite":"inv_x"}`},
	"POST /v1/auth/login":               {`{"username":"alice","password":"pw","device":{"name":"phone","platform":"ios","public_key":"k"}}`, `{"username":"a","password":"p","device":"laptop"}`, `{"device":null}`},
	"POST /v1/auth/refresh":             {`{"refresh_token":"abc"}`},
	"POST /v1/auth/logout":              {`{"refresh_token":""}`},
	"POST /v1/auth/password":            {`{"current_password":"a","new_password":"b"}`},
	"POST /v1/devices":                  {`{"name":"tablet","platform":"android","public_key":"abc"}`},
	"PATCH /v1/devices/:id":             {`{"name":"renamed"}`, `{"public_key":null}`},
	"POST /v1/orgs":                     {`{"name":"Acme"}`},
	"PUT /v1/orgs/:id/members/:user":    {`{"role":"orgadmin"}`},
	"POST /v1/spaces":                   {`{"name":"Design","org":"00000000-0000-0000-0000-000000000001"}`},
	"POST /v1/rooms":                    {`{"name":"general","kind":"public","topic":"t","members":["bob","carol"]}`, `{"kind":"direct","members":["b\u0000"]}`},
	"PATCH /v1/rooms/:id":               {`{"topic":"new","classification":10}`},
	"POST /v1/rooms/:id/members":        {`{"user":"bob"}`},
	"PUT /v1/rooms/:id/members/:user":   {`{"role":"guest"}`},
	"POST /v1/rooms/:id/messages":       {`{"text":"hi","thread":"","meta":{"k":[1,"\\u0000",{"x":null}]},"ref":"r1"}`, `{"text":"hi","meta":null}`, `{"text":"x"} {"text":"y"}`},
	"PATCH /v1/rooms/:id/messages/:mid": {`{"text":"edited"}`, "{\"text\":\"\xff\"}"},
	"POST /v1/admin/users":              {`{"username":"bob","password":"password-bob","role":"superadmin"}`},
	"POST /v1/admin/invites":            {`{"max_uses":3,"expires_in":3600,"note":"team"}`, `{"max_uses":1e99}`},
	"POST /v1/admin/roles":              {`{"name":"moderator","inherits":["member"]}`},
	"POST /v1/admin/policies":           {`{"sub":"moderator","dom":"room:*","act":"message.delete_any","eft":"allow","cond":"kind=public"}`},
	"DELETE /v1/admin/policies":         {`{"sub":"x","dom":"sys","act":"org.read","eft":"deny"}`},
	"PUT /v1/admin/assignments":         {`{"subject":"user:1","role":"member","scope":"room:1"}`},
	"DELETE /v1/admin/assignments":      {`{"subject":"bob","role":"guest","scope":"org:1"}`},
	"PUT /v1/admin/users/:id/clearance": {`{"clearance":50}`, `{"clearance":"50"}`},
}

// FuzzRequestBody checks the one decoder of every REST body (decodeBody)
// against every declared body type: it never panics; a refusal is a
// bad_request with a readable message; an accepted body was one JSON value
// and holds only strings the store can keep (including a login's device);
// and what was accepted survives a re-encode unchanged.
func FuzzRequestBody(f *testing.F) {
	routes := slices.Sorted(maps.Keys(requestBodies))
	for _, r := range routes {
		for _, s := range bodySeeds[r] {
			f.Add(r, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, route string, body []byte) {
		if requestBodies[route] == nil { // a mutated route still picks one, steadily
			route = routes[crc32.ChecksumIEEE([]byte(route))%uint32(len(routes))]
		}
		v := requestBodies[route]()
		if err := decodeBody(body, v); err != nil {
			checkRefusal(t, route, err)
			return
		}
		if !json.Valid(bytes.TrimSpace(body)) {
			t.Fatalf("%s accepted a body that is not one JSON value: %q", route, body)
		}
		checkStorable(t, route, reflect.ValueOf(v))
		if lb, ok := v.(*loginBody); ok {
			d, err := parseDevice(lb.Device)
			if err != nil {
				checkRefusal(t, route+" device", err)
			} else {
				checkStorable(t, route+" device", reflect.ValueOf(d))
			}
		}
		b1, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: re-encode %+v: %v", route, v, err)
		}
		again := requestBodies[route]()
		if err := decodeBody(b1, again); err != nil {
			t.Fatalf("%s: re-encoded body %s refused: %v", route, b1, err)
		}
		if b2, _ := json.Marshal(again); !bytes.Equal(b1, b2) {
			t.Fatalf("%s: round trip changed the body:\n%s\n%s", route, b1, b2)
		}
	})
}

func checkRefusal(t *testing.T, route string, err error) {
	t.Helper()
	var e *chat.Error
	if !errors.As(err, &e) || e.Code != protocol.CodeBadRequest || e.Message == "" || !utf8.ValidString(e.Message) {
		t.Fatalf("%s: refusal %#v is not a readable bad_request", route, err)
	}
}

// checkStorable walks every string of v (struct fields, pointers, slices,
// raw JSON) and fails on one the store could not keep.
func checkStorable(t *testing.T, where string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			checkStorable(t, where, v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			checkStorable(t, where+"."+v.Type().Field(i).Name, v.Field(i))
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			if err := store.CheckJSON(where, v.Bytes()); err != nil {
				t.Fatalf("accepted %v", err)
			}
			return
		}
		for i := range v.Len() {
			checkStorable(t, where, v.Index(i))
		}
	case reflect.String:
		if err := store.CheckText(where, v.String()); err != nil {
			t.Fatalf("accepted %v: %q", err, v.String())
		}
	}
}
