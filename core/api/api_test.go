package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
)

func eachBackend(t *testing.T, f func(t *testing.T, env *servertest.Env)) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f(t, servertest.Start(t, servertest.Options{DSN: b.DSN(t)}))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// A direct room is unique per pair: asking again, from either side, answers
// 200 with the existing room (it used to answer 500).
func TestDirectRoomIsUniquePerPair(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a, b := env.NewUser(t, "alice"), env.NewUser(t, "bob")
		create := func(u servertest.User, other string) (client.Room, int) {
			var r client.Room
			st := do(t, ctx, env, u, http.MethodPost, "/v1/rooms", `{"kind":"direct","members":["`+other+`"]}`, &r)
			return r, st
		}
		first, st := create(a, "bob")
		if st != http.StatusCreated || first.ID == "" || first.Kind != "direct" {
			t.Fatalf("first create: status %d, room %+v", st, first)
		}
		for _, c := range []struct {
			u     servertest.User
			other string
		}{{b, "alice"}, {a, "bob"}, {a, b.ID}} {
			again, st := create(c.u, c.other)
			if st != http.StatusOK || again.ID != first.ID {
				t.Fatalf("%s asks again for %s: status %d, room %+v; want 200 and room %s", c.u.Username, c.other, st, again, first.ID)
			}
		}
		rooms, err := listRooms(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(rooms) != 1 || rooms[0].ID != first.ID {
			t.Fatalf("bob's rooms = %+v, want exactly the one direct room", rooms)
		}
	})
}

func listRooms(ctx context.Context, u servertest.User) ([]client.Room, error) {
	var out struct {
		Rooms []client.Room `json:"rooms"`
	}
	return out.Rooms, u.API.Do(ctx, http.MethodGet, "/v1/rooms", nil, &out)
}

// Spaces use the same snake_case shape as every other body.
func TestSpacesShape(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := ctx(t)
	admin := env.NewUser(t, "root") // the first account is superadmin
	member := env.NewUser(t, "mia")
	var created map[string]any
	if err := admin.API.Do(ctx, http.MethodPost, "/v1/spaces", map[string]string{"name": "Eng"}, &created); err != nil {
		t.Fatal(err)
	}
	wantKeys := func(what string, m map[string]any) {
		t.Helper()
		for _, k := range []string{"id", "org", "name", "created_at"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("%s = %v: no %q", what, m, k)
			}
		}
		if len(m) != 4 {
			t.Fatalf("%s = %v: want exactly id, org, name, created_at", what, m)
		}
	}
	wantKeys("created space", created)
	var list struct {
		Spaces []map[string]any `json:"spaces"`
	}
	if err := member.API.Do(ctx, http.MethodGet, "/v1/spaces", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Spaces) != 2 {
		t.Fatalf("spaces = %v, want General and Eng", list.Spaces)
	}
	for _, sp := range list.Spaces {
		wantKeys("listed space", sp)
	}
	// Only admins create spaces; a refused request creates nothing.
	err := member.API.Do(ctx, http.MethodPost, "/v1/spaces", map[string]string{"name": "Mine"}, nil)
	if ae, ok := err.(*client.APIError); !ok || ae.Status != http.StatusForbidden || ae.Code != "forbidden" {
		t.Fatalf("member creates space: %v, want 403 forbidden", err)
	}
	if err := member.API.Do(ctx, http.MethodGet, "/v1/spaces", nil, &list); err != nil || len(list.Spaces) != 2 {
		t.Fatalf("after refused create: %v, %v", list.Spaces, err)
	}
}

// do sends a JSON request as u and returns the status, decoding the body
// into out.
func do(t *testing.T, ctx context.Context, env *servertest.Env, u servertest.User, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, env.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, path, err)
	}
	return resp.StatusCode
}

// A user's clearance is listed by GET /v1/users to those who may change it
// (superadmins by default) and to nobody else; a refused clearance (out of
// 0–100) changes nothing.
func TestUsersClearanceOnlyForUserAdmins(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		root := env.NewUser(t, "root") // the first account: superadmin
		bob := env.NewUser(t, "bob")
		var set map[string]any
		if st := do(t, ctx, env, root, http.MethodPut, "/v1/admin/users/"+bob.ID+"/clearance", `{"clearance":30}`, &set); st != http.StatusOK {
			t.Fatalf("set clearance: %d %v", st, set)
		}
		if st := do(t, ctx, env, root, http.MethodPut, "/v1/admin/users/"+bob.ID+"/clearance", `{"clearance":101}`, &set); st != http.StatusBadRequest {
			t.Fatalf("clearance 101: %d %v, want 400", st, set)
		}
		if st := do(t, ctx, env, bob, http.MethodPut, "/v1/admin/users/"+bob.ID+"/clearance", `{"clearance":100}`, &set); st != http.StatusForbidden {
			t.Fatalf("bob raises his own clearance: %d %v, want 403", st, set)
		}
		var users struct{ Users []map[string]any }
		if st := do(t, ctx, env, root, http.MethodGet, "/v1/users?q=bob", "", &users); st != http.StatusOK || len(users.Users) != 1 {
			t.Fatalf("list as root: %d %v", st, users)
		}
		if got := users.Users[0]["clearance"]; got != float64(30) {
			t.Fatalf("root sees bob's clearance %v, want 30", got)
		}
		users.Users = nil
		if st := do(t, ctx, env, bob, http.MethodGet, "/v1/users", "", &users); st != http.StatusOK || len(users.Users) != 2 {
			t.Fatalf("list as bob: %d %v", st, users)
		}
		for _, u := range users.Users {
			if c, ok := u["clearance"]; ok {
				t.Errorf("bob sees %v's clearance %v", u["username"], c)
			}
		}
	})
}
