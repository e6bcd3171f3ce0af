package pluginhost_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/pluginhost"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/client"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// The events test plugins: testdata/eventsplugin (a process) and
// testdata/eventswasm (a WASM module). Both declare every membership,
// reaction, user and room lifecycle hook, hold no grant, and print what they
// receive as "OBSERVED <Hook> <json>" lines, which reach the server log.
const (
	procPlugin = "evproc"
	wasmPlugin = "evwasm"
)

var (
	eventsBinOnce sync.Once
	eventsBin     string
	eventsBinErr  error
)

func eventsPluginBin(t *testing.T) string {
	t.Helper()
	bins(t) // the shared build: skips or fails the same way without go
	eventsBinOnce.Do(func() {
		eventsBin = filepath.Join(binDir, "eventsplugin")
		out, err := exec.Command("go", "build", "-o", eventsBin, "./testdata/eventsplugin").CombinedOutput()
		if err != nil {
			eventsBinErr = fmt.Errorf("go build ./testdata/eventsplugin: %v\n%s", err, out)
		}
	})
	if eventsBinErr != nil {
		t.Fatal(eventsBinErr)
	}
	return eventsBin
}

// obs is one hook call a test plugin observed.
type obs struct {
	Plugin, Hook string
	Body         map[string]any
}

func (o obs) str(keys ...string) string {
	for _, k := range keys {
		if v, ok := o.Body[k].(string); ok {
			return v
		}
	}
	return ""
}

// obj returns the nested object at key (user, room of lifecycle events).
func (o obs) obj(key string) obs {
	m, _ := o.Body[key].(map[string]any)
	return obs{Plugin: o.Plugin, Hook: o.Hook, Body: m}
}

// obsLog is the server's log writer: it keeps the OBSERVED lines of the
// events plugins, in the order each plugin printed them, and wakes waiters.
type obsLog struct {
	mu   sync.Mutex
	rest []byte
	all  []obs
	more chan struct{}
}

func newObsLog() *obsLog { return &obsLog{more: make(chan struct{})} }

func (l *obsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rest = append(l.rest, p...)
	added := false
	for {
		i := strings.IndexByte(string(l.rest), '\n')
		if i < 0 {
			break
		}
		line := string(l.rest[:i])
		l.rest = l.rest[i+1:]
		if o, ok := parseObserved(line); ok {
			l.all = append(l.all, o)
			added = true
		}
	}
	if added {
		close(l.more)
		l.more = make(chan struct{})
	}
	return len(p), nil
}

// parseObserved reads a slog text line `… msg="OBSERVED <Hook> <json>"
// plugin=<id> …`.
func parseObserved(line string) (obs, bool) {
	i := strings.Index(line, " msg=")
	if i < 0 {
		return obs{}, false
	}
	rest := line[i+5:]
	var msg string
	if strings.HasPrefix(rest, `"`) {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return obs{}, false
		}
		msg, _ = strconv.Unquote(q)
		rest = rest[len(q):]
	} else {
		msg, rest, _ = strings.Cut(rest, " ")
	}
	hook, body, ok := strings.Cut(strings.TrimPrefix(msg, "OBSERVED "), " ")
	if !ok || !strings.HasPrefix(msg, "OBSERVED ") {
		return obs{}, false
	}
	_, pl, ok := strings.Cut(rest, " plugin=")
	if !ok {
		return obs{}, false
	}
	pl, _, _ = strings.Cut(pl, " ")
	o := obs{Plugin: pl, Hook: hook}
	if err := json.Unmarshal([]byte(body), &o.Body); err != nil {
		return obs{}, false
	}
	return o, true
}

// mark is the position after everything observed so far.
func (l *obsLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

// waitFor waits until each events plugin has observed, after position from,
// a call for which match holds; it returns what each plugin observed from
// `from` up to and including that call. Each plugin gets its notifications
// one at a time in order, so nothing sent to it before that call is missing.
func (l *obsLog) waitFor(t *testing.T, from int, what string, match func(obs) bool) map[string][]obs {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		l.mu.Lock()
		out := map[string][]obs{}
		done := map[string]bool{}
		for _, o := range l.all[from:] {
			if done[o.Plugin] {
				continue
			}
			out[o.Plugin] = append(out[o.Plugin], o)
			if match(o) {
				done[o.Plugin] = true
			}
		}
		more := l.more
		l.mu.Unlock()
		if done[procPlugin] && done[wasmPlugin] {
			return out
		}
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("plugins %s and %s did not both observe %s within 60s; they saw %v", procPlugin, wasmPlugin, what, out)
		}
	}
}

// eventsEnv is a server running both events plugins, with a superadmin
// (the actor of every admin path) connected over WebSocket.
type eventsEnv struct {
	*servertest.Env
	log   *obsLog
	admin servertest.User
	ac    *client.Conn
}

func startEvents(t *testing.T) *eventsEnv {
	t.Helper()
	bin := eventsPluginBin(t)
	dir := t.TempDir()
	src, err := filepath.Abs("testdata/eventswasm")
	if err != nil {
		t.Fatal(err)
	}
	// No grants: these hooks need none.
	yaml := fmt.Sprintf(`plugins:
  - id: %s
    command: [%q]
  - id: %s
    kind: wasm
    wasm: %s
    source: %s
`, procPlugin, bin, wasmPlugin, filepath.Join(dir, "eventswasm.wasm"), src)
	path := filepath.Join(dir, "plugins.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	l := newObsLog()
	e := servertest.Start(t, servertest.Options{Log: l, LogLevel: slog.LevelInfo,
		Config: func(c *server.Config) { c.Plugins = path }})
	ev := &eventsEnv{Env: e, log: l}
	ev.admin = e.NewUser(t, "admin")
	ev.ac = e.Dial(t, ev.admin)
	return ev
}

// settle waits until c has received everything queued to it so far (the
// pong of a ping comes after it) and returns the membership frames
// (joined, left) among it.
func settle(t *testing.T, c *client.Conn) []protocol.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	var out []protocol.Frame
	for {
		select {
		case f, ok := <-c.Events():
			if !ok {
				return out
			}
			if f.Type == protocol.TypeJoined || f.Type == protocol.TypeLeft {
				out = append(out, f)
			}
		default:
			return out
		}
	}
}

// about keeps the frames of room about user.
func about(fs []protocol.Frame, room, user string) []string {
	var out []string
	for _, f := range fs {
		if f.Room == room && f.User == user {
			out = append(out, f.Type)
		}
	}
	return out
}

type memberHook struct{ Hook, Actor, Reason, Role string }

// TestEventsHooks runs the membership and lifecycle cases against one
// server with both events plugins.
func TestEventsHooks(t *testing.T) {
	e := startEvents(t)
	t.Run("every membership path", func(t *testing.T) { testMembershipPaths(t, e) })
	t.Run("direct rooms never grow", func(t *testing.T) { testDirectRoomsNeverGrow(t, e) })
	t.Run("reactions, users and rooms", func(t *testing.T) { testLifecycleHooks(t, e) })
	t.Run("bad membership changes", func(t *testing.T) { testBadMembershipChanges(t, e) })
	t.Run("a plugin's account changes", func(t *testing.T) { testPluginAccountChanges(t, e) })
}

// An account a plugin creates and deactivates through the host API fires
// each lifecycle hook once, with actor plugin:<id>, to every other plugin
// and not to the plugin that made the change; the deactivation takes the
// account out of its rooms with reason provisioning.
func testPluginAccountChanges(t *testing.T, e *eventsEnv) {
	ctx := context.Background()
	api := pluginhost.HostAPIOf(e.Server.Plugins(), procPlugin)
	actor := "plugin:" + procPlugin
	from := e.log.mark()
	u, err := api.CreateUser(ctx, &pb.CreateUserRequest{Username: "provisioned", Email: "provisioned@example.com", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	room, err := e.admin.API.CreateRoom(ctx, "provisioned-room", "public")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.admin.API.AddMember(ctx, room.ID, u.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := api.SetUserActive(ctx, &pb.SetUserActiveRequest{Id: u.Id, Active: false}); err != nil {
		t.Fatal(err)
	}
	topic := "after the plugin's changes"
	if err := e.admin.API.Do(ctx, "PATCH", "/v1/rooms/"+room.ID, map[string]string{"topic": topic}, nil); err != nil {
		t.Fatal(err)
	}
	seen := e.log.waitFor(t, from, "the room update after the plugin's changes", func(o obs) bool {
		return o.Hook == "RoomHasBeenUpdated" && o.obj("room").str("id") == room.ID && o.obj("room").str("topic") == topic
	})
	for p, want := range map[string][]string{
		wasmPlugin: {"UserHasBeenCreated", "UserHasLeftRoom:MEMBERSHIP_REASON_PROVISIONING", "UserHasBeenDeactivated"},
		procPlugin: nil, // its own changes
	} {
		var got []string
		for _, o := range seen[p] {
			switch {
			case strings.HasPrefix(o.Hook, "UserHasBeen") && o.obj("user").str("id") == u.Id:
				if o.str("actor") != actor || o.obj("user").str("email") != "" {
					t.Errorf("plugin %s: %s carried %v, want actor %s and no email", p, o.Hook, o.Body, actor)
				}
				got = append(got, o.Hook)
			case o.Hook == "UserHasLeftRoom" && o.str("user_id") == u.Id:
				if o.str("actor") != actor {
					t.Errorf("plugin %s: %s carried %v, want actor %s", p, o.Hook, o.Body, actor)
				}
				got = append(got, o.Hook+":"+o.str("reason"))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("plugin %s observed %v about the provisioned account, want %v", p, got, want)
		}
	}
}

// ChangeMembership (the door provisioning uses) refuses a change it cannot
// attribute or apply, with a clear error, and changes nothing.
func testBadMembershipChanges(t *testing.T, e *eventsEnv) {
	ctx := context.Background()
	room, err := e.admin.API.CreateRoom(ctx, "strict", "public")
	if err != nil {
		t.Fatal(err)
	}
	u := e.NewUser(t, "candidate")
	add := pb.MembershipReason_MEMBERSHIP_REASON_PROVISIONING
	for _, tc := range []struct {
		name string
		m    chat.Membership
		code string
	}{
		{"no actor", chat.Membership{Room: room.ID, User: u.ID, Reason: add}, protocol.CodeBadRequest},
		{"no reason", chat.Membership{Room: room.ID, User: u.ID, Actor: "plugin:scim"}, protocol.CodeBadRequest},
		{"unknown user", chat.Membership{Room: room.ID, User: "00000000-0000-4000-8000-00000000dead", Actor: "plugin:scim", Reason: add}, protocol.CodeNotFound},
		{"unknown room", chat.Membership{Room: "00000000-0000-4000-8000-00000000beef", User: u.ID, Actor: "plugin:scim", Reason: add}, protocol.CodeNotFound},
	} {
		changed, err := e.Server.Chat().ChangeMembership(ctx, tc.m)
		var ce *chat.Error
		if changed || !errors.As(err, &ce) || ce.Code != tc.code {
			t.Errorf("%s: changed=%v err=%v, want %s", tc.name, changed, err, tc.code)
		}
	}
	var ms struct{ Members []struct{ User string } }
	if err := e.admin.API.Do(ctx, "GET", "/v1/rooms/"+room.ID+"/members", nil, &ms); err != nil {
		t.Fatal(err)
	}
	if len(ms.Members) != 1 {
		t.Errorf("the room has %d members after refused changes, want its creator only: %+v", len(ms.Members), ms.Members)
	}
}

// Every way a user enters or leaves a room goes through one function: the
// room's members and the user see the same joined/left frames, and both a
// process plugin and a WASM module (neither holding a grant) observe the
// same hook with actor, reason and role.
func testMembershipPaths(t *testing.T, e *eventsEnv) {
	ctx := context.Background()
	org := store.DefaultOrg
	const admin, target = "admin", "target"

	type caseEnv struct {
		room string
		u    servertest.User
		uc   *client.Conn
	}
	reason := func(r pb.MembershipReason) string { return r.String() }
	cases := []struct {
		name   string
		leave  bool // the target is a member first and the path removes them
		create bool // the path creates the room
		act    func(c *caseEnv) error
		actor  string // admin or target
		reason pb.MembershipReason
		role   string
		closed bool // the target's session is closed by the path (no frame for it)
	}{
		{name: "join over WebSocket", actor: target, reason: pb.MembershipReason_MEMBERSHIP_REASON_SELF, role: "member",
			act: func(c *caseEnv) error { _, err := c.uc.Join(ctx, c.room); return err }},
		{name: "join over REST", actor: target, reason: pb.MembershipReason_MEMBERSHIP_REASON_SELF, role: "member",
			act: func(c *caseEnv) error { return c.u.API.JoinRoom(ctx, c.room) }},
		{name: "add (POST members)", actor: admin, reason: pb.MembershipReason_MEMBERSHIP_REASON_ADDED, role: "member",
			act: func(c *caseEnv) error { return e.admin.API.AddMember(ctx, c.room, c.u.ID) }},
		{name: "role (PUT members)", actor: admin, reason: pb.MembershipReason_MEMBERSHIP_REASON_ROLE, role: "guest",
			act: func(c *caseEnv) error {
				return e.admin.API.Do(ctx, "PUT", "/v1/rooms/"+c.room+"/members/"+c.u.ID, map[string]string{"role": "guest"}, nil)
			}},
		{name: "role (PUT admin assignments, room scope)", actor: admin, reason: pb.MembershipReason_MEMBERSHIP_REASON_ROLE, role: "member",
			act: func(c *caseEnv) error {
				return e.admin.API.Do(ctx, "PUT", "/v1/admin/assignments",
					map[string]string{"subject": "user:" + c.u.ID, "role": "member", "scope": "room:" + c.room}, nil)
			}},
		{name: "create with members", create: true, actor: admin, reason: pb.MembershipReason_MEMBERSHIP_REASON_CREATED, role: "member",
			act: func(c *caseEnv) error {
				r, err := e.admin.API.CreateRoom(ctx, "created-with-"+c.u.Username, "private", c.u.ID)
				c.room = r.ID
				return err
			}},
		{name: "provisioning (ChangeMembership)", actor: "plugin:scim", reason: pb.MembershipReason_MEMBERSHIP_REASON_PROVISIONING, role: "member",
			act: func(c *caseEnv) error {
				_, err := e.Server.Chat().ChangeMembership(ctx, chat.Membership{Room: c.room, User: c.u.ID, Actor: "plugin:scim",
					Reason: pb.MembershipReason_MEMBERSHIP_REASON_PROVISIONING})
				return err
			}},
		{name: "leave over WebSocket", leave: true, actor: target, reason: pb.MembershipReason_MEMBERSHIP_REASON_SELF,
			act: func(c *caseEnv) error { _, err := c.uc.Leave(ctx, c.room); return err }},
		{name: "leave over REST", leave: true, actor: target, reason: pb.MembershipReason_MEMBERSHIP_REASON_SELF,
			act: func(c *caseEnv) error { return c.u.API.Do(ctx, "POST", "/v1/rooms/"+c.room+"/leave", nil, nil) }},
		{name: "kick (DELETE members)", leave: true, actor: admin, reason: pb.MembershipReason_MEMBERSHIP_REASON_REMOVED,
			act: func(c *caseEnv) error {
				return e.admin.API.Do(ctx, "DELETE", "/v1/rooms/"+c.room+"/members/"+c.u.ID, nil, nil)
			}},
		{name: "unassign (DELETE admin assignments, room scope)", leave: true, actor: admin, reason: pb.MembershipReason_MEMBERSHIP_REASON_REMOVED,
			act: func(c *caseEnv) error {
				return e.admin.API.Do(ctx, "DELETE", "/v1/admin/assignments",
					map[string]string{"subject": "user:" + c.u.ID, "role": "member", "scope": "room:" + c.room}, nil)
			}},
		{name: "org removal", leave: true, actor: admin, reason: pb.MembershipReason_MEMBERSHIP_REASON_ORG_REMOVAL,
			act: func(c *caseEnv) error {
				return e.admin.API.Do(ctx, "DELETE", "/v1/orgs/"+org+"/members/"+c.u.ID, nil, nil)
			}},
		{name: "deactivation", leave: true, closed: true, actor: admin, reason: pb.MembershipReason_MEMBERSHIP_REASON_DEACTIVATED,
			act: func(c *caseEnv) error {
				return e.admin.API.Do(ctx, "POST", "/v1/admin/users/"+c.u.ID+"/deactivate", nil, nil)
			}},
		{name: "provisioning leave (ChangeMembership)", leave: true, actor: "plugin:scim", reason: pb.MembershipReason_MEMBERSHIP_REASON_PROVISIONING,
			act: func(c *caseEnv) error {
				_, err := e.Server.Chat().ChangeMembership(ctx, chat.Membership{Room: c.room, User: c.u.ID, Actor: "plugin:scim",
					Reason: pb.MembershipReason_MEMBERSHIP_REASON_PROVISIONING, Leave: true})
				return err
			}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &caseEnv{u: e.NewUser(t, fmt.Sprintf("member%d", i))}
			c.uc = e.Dial(t, c.u)
			if !tc.create {
				r, err := e.admin.API.CreateRoom(ctx, fmt.Sprintf("room%d", i), "public")
				if err != nil {
					t.Fatal(err)
				}
				c.room = r.ID
			}
			if tc.leave {
				before := e.log.mark()
				if err := c.u.API.JoinRoom(ctx, c.room); err != nil {
					t.Fatal(err)
				}
				// The plugins have heard of the join before the path runs.
				e.log.waitFor(t, before, "the join before "+tc.name, func(o obs) bool {
					return o.Hook == "UserHasJoinedRoom" && o.str("room") == c.room && o.str("user_id", "user") == c.u.ID
				})
			}
			settle(t, e.ac)
			settle(t, c.uc)
			from := e.log.mark()

			if err := tc.act(c); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}

			want := []string{protocol.TypeJoined}
			if tc.leave {
				want = []string{protocol.TypeLeft}
			}
			// Frames: the room's other member, and the user themselves.
			if got := about(settle(t, e.ac), c.room, c.u.ID); !slices.Equal(got, want) {
				t.Errorf("the room's member got %v about the user, want %v", got, want)
			}
			if tc.closed {
				select {
				case <-c.uc.Done():
				case <-time.After(30 * time.Second):
					t.Fatal("the deactivated user's session is still open")
				}
				if g := c.uc.Goodbye(); g == nil || g.Reason != protocol.ReasonRevoked {
					t.Errorf("deactivated user's goodbye = %+v, want reason %s", g, protocol.ReasonRevoked)
				}
			} else if got := about(settle(t, c.uc), c.room, c.u.ID); !slices.Equal(got, want) {
				t.Errorf("the user's own session got %v, want %v", got, want)
			}

			// Hooks: a later room update is the barrier; each plugin gets its
			// notifications in order, so everything before it has arrived.
			topic := "after " + tc.name
			if err := e.admin.API.Do(ctx, "PATCH", "/v1/rooms/"+c.room, map[string]string{"topic": topic}, nil); err != nil {
				t.Fatal(err)
			}
			seen := e.log.waitFor(t, from, "the room update after "+tc.name, func(o obs) bool {
				return o.Hook == "RoomHasBeenUpdated" && o.obj("room").str("id") == c.room && o.obj("room").str("topic") == topic
			})
			actor := c.u.ID
			switch tc.actor {
			case admin:
				actor = e.admin.ID
			case target:
			default:
				actor = tc.actor
			}
			hook := "UserHasJoinedRoom"
			if tc.leave {
				hook = "UserHasLeftRoom"
			}
			wantHooks := []memberHook{{hook, actor, reason(tc.reason), tc.role}}
			for _, p := range []string{procPlugin, wasmPlugin} {
				var got []memberHook
				for _, o := range seen[p] {
					if (o.Hook == "UserHasJoinedRoom" || o.Hook == "UserHasLeftRoom") && o.str("room") == c.room && o.str("user_id", "user") == c.u.ID {
						got = append(got, memberHook{o.Hook, o.str("actor"), o.str("reason"), o.str("role")})
					}
				}
				if !slices.Equal(got, wantHooks) {
					t.Errorf("plugin %s observed %+v, want %+v", p, got, wantHooks)
				}
				if tc.create {
					// The room is announced before its members join it.
					var order []string
					for _, o := range seen[p] {
						switch {
						case o.Hook == "RoomHasBeenCreated" && o.obj("room").str("id") == c.room:
							order = append(order, "created")
						case o.Hook == "UserHasJoinedRoom" && o.str("room") == c.room:
							order = append(order, "joined:"+o.str("user_id", "user")+":"+o.str("role"))
						}
					}
					wantOrder := []string{"created", "joined:" + e.admin.ID + ":owner", "joined:" + c.u.ID + ":member"}
					if !slices.Equal(order, wantOrder) {
						t.Errorf("plugin %s: creation order %v, want %v", p, order, wantOrder)
					}
				}
			}
		})
	}
}

// A direct room holds its pair and nobody else, whichever path tries to add
// a third person: each is refused with bad_request and changes nothing (no
// member, no frame, no hook).
func testDirectRoomsNeverGrow(t *testing.T, e *eventsEnv) {
	ctx := context.Background()
	pal := e.NewUser(t, "pal")
	third := e.NewUser(t, "third")
	tc := e.Dial(t, third)
	dm, err := e.admin.API.CreateRoom(ctx, "", "direct", pal.ID)
	if err != nil {
		t.Fatal(err)
	}
	settle(t, e.ac)
	from := e.log.mark()
	paths := map[string]func() error{
		"POST members": func() error { return e.admin.API.AddMember(ctx, dm.ID, third.ID) },
		"PUT members": func() error {
			return e.admin.API.Do(ctx, "PUT", "/v1/rooms/"+dm.ID+"/members/"+third.ID, map[string]string{"role": "member"}, nil)
		},
		"PUT admin assignments": func() error {
			return e.admin.API.Do(ctx, "PUT", "/v1/admin/assignments",
				map[string]string{"subject": "user:" + third.ID, "role": "member", "scope": "room:" + dm.ID}, nil)
		},
		"provisioning": func() error {
			_, err := e.Server.Chat().ChangeMembership(ctx, chat.Membership{Room: dm.ID, User: third.ID, Actor: "plugin:scim",
				Reason: pb.MembershipReason_MEMBERSHIP_REASON_PROVISIONING})
			return err
		},
	}
	for name, add := range paths {
		err := add()
		var ae *client.APIError
		var ce *chat.Error
		switch {
		case errors.As(err, &ae) && ae.Status == 400 && ae.Code == protocol.CodeBadRequest && strings.Contains(ae.Message, "direct rooms cannot take more members"):
		case errors.As(err, &ce) && ce.Code == protocol.CodeBadRequest && strings.Contains(ce.Message, "direct rooms cannot take more members"):
		default:
			t.Errorf("%s: adding a third person to a direct room: %v, want bad_request", name, err)
		}
	}
	var ms struct{ Members []struct{ User string } }
	if err := e.admin.API.Do(ctx, "GET", "/v1/rooms/"+dm.ID+"/members", nil, &ms); err != nil {
		t.Fatal(err)
	}
	if len(ms.Members) != 2 {
		t.Errorf("the direct room has %d members after the refusals, want its 2: %+v", len(ms.Members), ms.Members)
	}
	if got := about(settle(t, e.ac), dm.ID, third.ID); len(got) != 0 {
		t.Errorf("the room's member got %v about the refused user", got)
	}
	if got := settle(t, tc); len(got) != 0 {
		t.Errorf("the refused user got %v", got)
	}
	topic := "after the refusals"
	if err := e.admin.API.Do(ctx, "PATCH", "/v1/rooms/"+dm.ID, map[string]string{"topic": topic}, nil); err != nil {
		t.Fatal(err)
	}
	seen := e.log.waitFor(t, from, "the direct room's update", func(o obs) bool {
		return o.Hook == "RoomHasBeenUpdated" && o.obj("room").str("id") == dm.ID
	})
	for p, os := range seen {
		for _, o := range os {
			if o.Hook == "UserHasJoinedRoom" && o.str("room") == dm.ID && o.str("user_id", "user") == third.ID {
				t.Errorf("plugin %s observed the refused user join the direct room: %v", p, o.Body)
			}
		}
	}

	// Its own two come back the one way a direct room takes members: asking
	// for it again.
	if err := pal.API.Do(ctx, "POST", "/v1/rooms/"+dm.ID+"/leave", nil, nil); err != nil {
		t.Fatal(err)
	}
	from = e.log.mark()
	again, err := e.admin.API.CreateRoom(ctx, "", "direct", pal.ID)
	if err != nil || again.ID != dm.ID {
		t.Fatalf("the direct room asked for again: %+v, %v; want room %s", again, err, dm.ID)
	}
	e.log.waitFor(t, from, "the pal back in the direct room", func(o obs) bool {
		return o.Hook == "UserHasJoinedRoom" && o.str("room") == dm.ID && o.str("user_id", "user") == pal.ID &&
			o.str("reason") == pb.MembershipReason_MEMBERSHIP_REASON_CREATED.String() && o.str("actor") == e.admin.ID
	})
}

// The reaction, user and room lifecycle hooks reach both plugins (no grant
// needed), each with its actor.
func testLifecycleHooks(t *testing.T, e *eventsEnv) {
	ctx := context.Background()
	type want struct {
		what  string
		match func(o obs) bool
	}
	check := func(from int, ws ...want) {
		t.Helper()
		for _, w := range ws {
			e.log.waitFor(t, from, w.what, w.match)
		}
	}
	// Users: registration (no actor), an admin's creation, deactivation,
	// reactivation and a clearance change (the admin is the actor).
	from := e.log.mark()
	self := e.NewUser(t, "selfmade")
	var made struct{ User client.User }
	if err := e.admin.API.Do(ctx, "POST", "/v1/admin/users", map[string]string{"username": "adminmade", "password": "password-adminmade"}, &made); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/admin/users/" + made.User.ID + "/deactivate", nil},
		{"POST", "/v1/admin/users/" + made.User.ID + "/reactivate", nil},
		{"PUT", "/v1/admin/users/" + made.User.ID + "/clearance", map[string]int{"clearance": 20}},
	} {
		if err := e.admin.API.Do(ctx, step.method, step.path, step.body, nil); err != nil {
			t.Fatalf("%s %s: %v", step.method, step.path, err)
		}
	}
	user := func(o obs, id, actor string) bool { return o.obj("user").str("id") == id && o.str("actor") == actor }
	changed := func(o obs) string {
		var out []string
		for _, c := range o.Body["changed"].([]any) {
			out = append(out, c.(string))
		}
		return strings.Join(out, ",")
	}
	check(from,
		want{"UserHasBeenCreated by registration", func(o obs) bool {
			return o.Hook == "UserHasBeenCreated" && user(o, self.ID, "") && o.obj("user").str("username") == "selfmade"
		}},
		want{"UserHasBeenCreated by an admin", func(o obs) bool { return o.Hook == "UserHasBeenCreated" && user(o, made.User.ID, e.admin.ID) }},
		want{"UserHasBeenDeactivated", func(o obs) bool {
			return o.Hook == "UserHasBeenDeactivated" && user(o, made.User.ID, e.admin.ID) && o.obj("user").Body["deactivated"] == true
		}},
		want{"UserHasBeenUpdated (reactivated)", func(o obs) bool {
			return o.Hook == "UserHasBeenUpdated" && user(o, made.User.ID, e.admin.ID) && changed(o) == "active"
		}},
		want{"UserHasBeenUpdated (clearance)", func(o obs) bool {
			return o.Hook == "UserHasBeenUpdated" && user(o, made.User.ID, e.admin.ID) && changed(o) == "clearance"
		}},
	)

	// Rooms: creation and an update, by their actor.
	from = e.log.mark()
	room, err := self.API.CreateRoom(ctx, "lifecycle", "public")
	if err != nil {
		t.Fatal(err)
	}
	if err := self.API.Do(ctx, "PATCH", "/v1/rooms/"+room.ID, map[string]string{"topic": "hooks"}, nil); err != nil {
		t.Fatal(err)
	}
	roomIs := func(o obs) bool { return o.obj("room").str("id") == room.ID && o.str("actor") == self.ID }
	check(from,
		want{"RoomHasBeenCreated", func(o obs) bool {
			return o.Hook == "RoomHasBeenCreated" && roomIs(o) && o.obj("room").str("name") == "lifecycle" && o.obj("room").str("kind") == "public"
		}},
		want{"RoomHasBeenUpdated", func(o obs) bool {
			return o.Hook == "RoomHasBeenUpdated" && roomIs(o) && o.obj("room").str("topic") == "hooks" && changed(o) == "topic"
		}},
	)

	// Reactions: added, then removed, after commit, by the reactor.
	sc := e.Dial(t, self)
	msg, err := send(sc, room.ID, "react to me")
	if err != nil {
		t.Fatal(err)
	}
	from = e.log.mark()
	on, err := sc.React(ctx, room.ID, msg.ID, "👍", true)
	if err != nil {
		t.Fatal(err)
	}
	off, err := sc.React(ctx, room.ID, msg.ID, "👍", false)
	if err != nil {
		t.Fatal(err)
	}
	reaction := func(o obs, seq int64) bool {
		return o.str("room") == room.ID && o.str("message_id") == msg.ID && o.str("user_id") == self.ID &&
			o.str("emoji") == "👍" && o.str("seq") == strconv.FormatInt(seq, 10)
	}
	seen := e.log.waitFor(t, from, "ReactionHasBeenRemoved", func(o obs) bool {
		return o.Hook == "ReactionHasBeenRemoved" && reaction(o, off.Seq)
	})
	for _, p := range []string{procPlugin, wasmPlugin} {
		var order []string
		for _, o := range seen[p] {
			if strings.HasPrefix(o.Hook, "Reaction") && o.str("message_id") == msg.ID {
				if !reaction(o, map[string]int64{"ReactionHasBeenAdded": on.Seq, "ReactionHasBeenRemoved": off.Seq}[o.Hook]) {
					t.Errorf("plugin %s: %s carried %v", p, o.Hook, o.Body)
				}
				order = append(order, o.Hook)
			}
		}
		if !slices.Equal(order, []string{"ReactionHasBeenAdded", "ReactionHasBeenRemoved"}) {
			t.Errorf("plugin %s observed reactions %v, want added then removed", p, order)
		}
	}
}
