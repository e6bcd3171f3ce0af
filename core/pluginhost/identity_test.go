package pluginhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// The identity and provisioning host calls, through a real process plugin
// (testdata/identityplugin, the raw contract) and a real WASM module
// (wasmhost/testdata/hostcall, the generic host_call import), each once with
// the grants and once without.

var idBuild struct {
	once sync.Once
	err  error
}

// identityPlugin builds testdata/identityplugin next to the other test
// plugins (removed by TestMain).
func identityPlugin(t testing.TB) string {
	t.Helper()
	bins(t)
	bin := filepath.Join(binDir, "identityplugin")
	idBuild.once.Do(func() {
		out, err := exec.Command("go", "build", "-o", bin, "./testdata/identityplugin").CombinedOutput()
		if err != nil {
			idBuild.err = fmt.Errorf("go build ./testdata/identityplugin: %v\n%s", err, out)
		}
	})
	if idBuild.err != nil {
		t.Fatal(idBuild.err)
	}
	return bin
}

const allIdentityGrants = "[commands, identity, users.read, users.write, roles.write, permissions.check]"

// identityYAML runs the plugin and the module twice each: with every
// identity and provisioning grant (idp, widp) and with commands only
// (idbare, wbare).
func identityYAML(t *testing.T, dir string) string {
	bin := identityPlugin(t)
	src := wasmSrc(t, "core/pluginhost/wasmhost/testdata/hostcall")
	return fmt.Sprintf(`plugins:
  - id: idp
    command: [%[1]q]
    grants: %[4]s
  - id: idbare
    command: [%[1]q]
    grants: [commands]
    config: {label: "Sign in with Bare"}
  - id: widp
    kind: wasm
    wasm: %[2]s/widp.wasm
    source: %[3]s
    grants: %[4]s
    config: {command: wcall}
    limits: {timeouts: {ExecuteCommand: 10s}}
  - id: wbare
    kind: wasm
    wasm: %[2]s/wbare.wasm
    source: %[3]s
    grants: [commands]
    config: {command: wbare}
    limits: {timeouts: {ExecuteCommand: 10s}}
`, bin, dir, src, allIdentityGrants)
}

// result is a host call's answer as the test plugins report it.
type result struct {
	OK   bool
	Code string         // gRPC code name of an error
	Msg  string         // error message
	Out  map[string]any // protojson answer
	Raw  string
}

var errLine = regexp.MustCompile(`^ERR ([A-Z_]+): (.*)$`)

// hostCall has plugin command cmd call method with req (protojson) and
// returns what the host answered.
func (e *env) hostCall(t *testing.T, cmd, method, req string) result {
	t.Helper()
	ack, err := send(e.ac, e.room, "/"+cmd+" "+method+" "+req)
	if err != nil || ack.Text == nil {
		t.Fatalf("/%s %s: %+v %v", cmd, method, ack, err)
	}
	text := *ack.Text
	if out, ok := strings.CutPrefix(text, "OK "); ok {
		r := result{OK: true, Raw: out}
		if err := json.Unmarshal([]byte(out), &r.Out); err != nil {
			t.Fatalf("/%s %s answered %q: %v", cmd, method, text, err)
		}
		return r
	}
	m := errLine.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("/%s %s answered %q", cmd, method, text)
	}
	return result{Code: m[1], Msg: m[2], Raw: text}
}

func (e *env) mustCall(t *testing.T, cmd, method, req string) map[string]any {
	t.Helper()
	r := e.hostCall(t, cmd, method, req)
	if !r.OK {
		t.Fatalf("/%s %s %s: %s", cmd, method, req, r.Raw)
	}
	return r.Out
}

func (e *env) wantCode(t *testing.T, code, cmd, method, req string) result {
	t.Helper()
	r := e.hostCall(t, cmd, method, req)
	if r.OK || r.Code != code {
		t.Fatalf("/%s %s %s: %s; want %s", cmd, method, req, r.Raw, code)
	}
	return r
}

func str(v any) string { s, _ := v.(string); return s }

func field(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	return v
}

// rest does a JSON request against the server and returns the status and
// the decoded body.
func rest(t *testing.T, e *env, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, out
}

// members returns a room's members (user → stored role), as the admin sees them.
func members(t *testing.T, e *env, room string) map[string]string {
	t.Helper()
	var out struct {
		Members []struct {
			User string `json:"user"`
			Role string `json:"role"`
		} `json:"members"`
	}
	if err := e.admin.API.Do(context.Background(), "GET", "/v1/rooms/"+room+"/members", nil, &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, mb := range out.Members {
		m[mb.User] = mb.Role
	}
	return m
}

// noRedirect is an HTTP client that shows redirects instead of following.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// page fetches a plugin page (GET, or POST with form) and returns status,
// Location and body.
func page(t *testing.T, e *env, path string, form url.Values) (int, string, string) {
	t.Helper()
	var (
		resp *http.Response
		err  error
	)
	if form == nil {
		resp, err = noRedirect.Get(e.URL + path)
	} else {
		resp, err = noRedirect.PostForm(e.URL+path, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// identityCalls are the host calls of items 4 and 5 with a valid request
// each (ids that need not exist: a refusal for a missing grant comes first).
var identityCalls = []struct{ method, req string }{
	{"RegisterLoginMethod", `{"id":"x","label":"X","path":"/x"}`},
	{"ResolveIdentity", `{"identity":{"issuer":"https://i.example","subject":"s"},"create":true}`},
	{"IssueLogin", `{"user_id":"00000000-0000-0000-0000-00000000000f"}`},
	{"GetLoginChallenge", `{"challenge":"c"}`},
	{"ConfirmSecondFactor", `{"challenge":"c","factor":"f","ok":true}`},
	{"ListUsers", `{}`},
	{"CreateUser", `{"username":"nobody-made-me","active":true}`},
	{"UpdateUser", `{"id":"00000000-0000-0000-0000-00000000000f","fields":["display_name"]}`},
	{"SetUserActive", `{"id":"00000000-0000-0000-0000-00000000000f"}`},
	{"AssignRole", `{"user_id":"00000000-0000-0000-0000-00000000000f","role":"member","scope":"org","scope_id":"` + store.DefaultOrg + `"}`},
	{"RemoveRole", `{"user_id":"00000000-0000-0000-0000-00000000000f","role":"member","scope":"org","scope_id":"` + store.DefaultOrg + `"}`},
	{"ListRoles", `{"user_id":"00000000-0000-0000-0000-00000000000f"}`},
	{"CheckPermission", `{"user_id":"00000000-0000-0000-0000-00000000000f","action":"message.send","object_kind":"system"}`},
}

// runtimes are the two ways a plugin runs, each with and without grants.
var runtimes = []struct{ name, granted, bare, plugin string }{
	{"process", "idp", "idbare", "idp"},
	{"wasm", "wcall", "wbare", "widp"},
}

func TestIdentityHostCalls(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.DSN(t)
			e := startOn(t, dsn, identityYAML(t, t.TempDir()))
			for _, name := range []string{"idp", "idbare", "widp", "wbare"} {
				if st := e.status(t, name); st.State != "running" {
					t.Fatalf("%s: %+v", name, st)
				}
			}
			t.Run("refusals", func(t *testing.T) { testIdentityRefusals(t, e) })
			for _, rt := range runtimes {
				t.Run(rt.name+"/login", func(t *testing.T) { testIssueLogin(t, e, rt.granted, rt.plugin) })
				t.Run(rt.name+"/provisioning", func(t *testing.T) { testProvisioning(t, e, rt.granted, rt.plugin) })
				t.Run(rt.name+"/roles", func(t *testing.T) { testRoles(t, e, rt.granted, rt.plugin) })
			}
			t.Run("methods", func(t *testing.T) { testLoginMethods(t, e) })
			t.Run("second-factor", func(t *testing.T) { testSecondFactor(t, e) })
			t.Run("wasm/second-factor", func(t *testing.T) { testWASMSecondFactor(t, e) })
			t.Run("deactivation", func(t *testing.T) { testDeactivation(t, e) })
			alive(t, e.ac, e.bc)
		})
	}
}

// Every identity and provisioning call is refused without its grant, from
// a process plugin and from a WASM module alike.
func testIdentityRefusals(t *testing.T, e *env) {
	for _, rt := range runtimes {
		for _, c := range identityCalls {
			r := e.wantCode(t, "PERMISSION_DENIED", rt.bare, c.method, c.req)
			if !strings.Contains(r.Msg, "grant") {
				t.Errorf("%s %s: refusal %q does not name the grant", rt.name, c.method, r.Msg)
			}
		}
	}
	// The refused plugins registered no sign-in button.
	_, out := rest(t, e, "GET", "/v1/auth/methods", "", nil)
	for _, m := range out["methods"].([]any) {
		if p := str(m.(map[string]any)["plugin"]); p == "idbare" || p == "wbare" {
			t.Fatalf("plugin %s has a login method without the identity grant: %v", p, out)
		}
	}
}

// ResolveIdentity links or creates just in time; IssueLogin's one-time code
// is exchanged once for the same tokens as a password login.
func testIssueLogin(t *testing.T, e *env, cmd, plugin string) {
	iss := "https://" + plugin + ".example"
	ident := func(sub, user, extra string) string {
		return `{"identity":{"issuer":"` + iss + `","subject":"` + sub + `","username":"` + user + `","email":"` + user +
			`@x.example","email_verified":true,"display_name":"D ` + user + `"}` + extra + `}`
	}
	// Not linked and creating not allowed.
	e.wantCode(t, "NOT_FOUND", cmd, "ResolveIdentity", ident("s1", plugin+"-jit", ""))
	// Bad input changes nothing.
	e.wantCode(t, "INVALID_ARGUMENT", cmd, "ResolveIdentity", `{"identity":{"issuer":"","subject":"s"},"create":true}`)
	e.wantCode(t, "INVALID_ARGUMENT", cmd, "ResolveIdentity", ident("s1", plugin+"-jit", `,"create":true,"link":"phone"`))
	out := e.mustCall(t, cmd, "ResolveIdentity", ident("s1", plugin+"-jit", `,"create":true`))
	if out["created"] != true || str(field(out, "user", "username")) != plugin+"-jit" ||
		str(field(out, "user", "email")) != plugin+"-jit@x.example" || str(field(out, "user", "display_name")) != "D "+plugin+"-jit" {
		t.Fatalf("JIT create: %v", out)
	}
	uid := str(field(out, "user", "id"))
	again := e.mustCall(t, cmd, "ResolveIdentity", ident("s1", "whatever", `,"create":true`))
	if again["created"] == true || str(field(again, "user", "id")) != uid {
		t.Fatalf("second resolve: %v; want the linked account %s", again, uid)
	}
	// Another subject claiming the same username gets its own account,
	// never the existing one.
	other := e.mustCall(t, cmd, "ResolveIdentity", ident("s2", plugin+"-jit", `,"create":true`))
	if str(field(other, "user", "id")) == uid || str(field(other, "user", "username")) != plugin+"-jit-2" {
		t.Fatalf("username collision: %v", other)
	}
	// Linking by username to an existing account (bob's).
	linked := e.mustCall(t, cmd, "ResolveIdentity", `{"identity":{"issuer":"`+iss+`","subject":"bob-at-idp","username":"bob"},"link":"username"}`)
	if linked["linked"] != true || str(field(linked, "user", "id")) != e.bob.ID {
		t.Fatalf("link by username: %v", linked)
	}

	login := e.mustCall(t, cmd, "IssueLogin", `{"user_id":"`+uid+`","device":"SSO laptop","client_addr":"203.0.113.9","user_agent":"test"}`)
	code := str(login["code"])
	if code == "" || str(login["redirect"]) != "/#/login/code/"+code {
		t.Fatalf("IssueLogin: %v", login)
	}
	e.wantCode(t, "NOT_FOUND", cmd, "IssueLogin", `{"user_id":"00000000-0000-0000-0000-00000000000f"}`)
	st, tok := rest(t, e, "POST", "/v1/auth/exchange", "", map[string]any{"code": code})
	if st != 200 || str(tok["access_token"]) == "" || str(tok["refresh_token"]) == "" || tok["token_type"] != "Bearer" {
		t.Fatalf("exchange: %d %v", st, tok)
	}
	if st, again := rest(t, e, "POST", "/v1/auth/exchange", "", map[string]any{"code": code}); st != 401 {
		t.Fatalf("second exchange of one code: %d %v; want 401", st, again)
	}
	if st, _ := rest(t, e, "POST", "/v1/auth/exchange", "", map[string]any{"code": "not-a-code"}); st != 401 {
		t.Fatalf("unknown code: %d; want 401", st)
	}
	// The tokens are a real session on the device IssueLogin named.
	api := &client.API{Base: e.URL, Token: str(tok["access_token"])}
	var sessions struct {
		Sessions []struct {
			Device string `json:"device"`
		} `json:"sessions"`
	}
	if err := api.Do(context.Background(), "GET", "/v1/sessions", nil, &sessions); err != nil || len(sessions.Sessions) != 1 {
		t.Fatalf("sessions of the SSO user: %+v %v", sessions, err)
	}
	var devices struct {
		Devices []struct {
			Name string `json:"name"`
		} `json:"devices"`
	}
	if err := api.Do(context.Background(), "GET", "/v1/devices", nil, &devices); err != nil || len(devices.Devices) != 1 || devices.Devices[0].Name != "SSO laptop" {
		t.Fatalf("devices of the SSO user: %+v %v", devices, err)
	}
	if _, err := (&client.API{Base: e.URL}).Refresh(context.Background(), str(tok["refresh_token"])); err != nil {
		t.Fatalf("refresh token of the SSO login: %v", err)
	}
	c, err := client.Dial(context.Background(), e.WSURL, client.Options{Token: str(tok["access_token"])})
	if err != nil {
		t.Fatalf("WebSocket with the SSO login's token: %v", err)
	}
	_ = c.Close()
	// The JIT account has no password.
	if _, err := (&client.API{Base: e.URL}).Login(context.Background(), plugin+"-jit", ""); err == nil {
		t.Fatal("a JIT account logged in with an empty password")
	}
}

// Users are created, listed, updated, deactivated and reactivated; bad
// input and collisions change nothing.
func testProvisioning(t *testing.T, e *env, cmd, plugin string) {
	name := plugin + "-prov"
	u := e.mustCall(t, cmd, "CreateUser", `{"username":"`+name+`","email":"`+name+`@corp.example","display_name":"Pro Vision","external_id":"ext-`+plugin+`","active":true}`)
	uid := str(u["id"])
	if uid == "" || str(u["external_id"]) != "ext-"+plugin || u["deactivated"] == true || str(u["role"]) != "member" {
		t.Fatalf("CreateUser: %v", u)
	}
	e.wantCode(t, "ALREADY_EXISTS", cmd, "CreateUser", `{"username":"`+name+`","active":true}`)
	e.wantCode(t, "ALREADY_EXISTS", cmd, "CreateUser", `{"username":"`+name+`-x","external_id":"ext-`+plugin+`","active":true}`)
	e.wantCode(t, "INVALID_ARGUMENT", cmd, "CreateUser", `{"username":"No Spaces!","active":true}`)
	inactive := e.mustCall(t, cmd, "CreateUser", `{"username":"`+name+`-off"}`)
	if inactive["deactivated"] != true {
		t.Fatalf("CreateUser active=false: %v", inactive)
	}

	list := e.mustCall(t, cmd, "ListUsers", `{"external_id":"ext-`+plugin+`"}`)
	if us, _ := list["users"].([]any); len(us) != 1 || str(us[0].(map[string]any)["id"]) != uid {
		t.Fatalf("ListUsers by external id: %v", list)
	}
	page1 := e.mustCall(t, cmd, "ListUsers", `{"limit":2}`)
	us, _ := page1["users"].([]any)
	if len(us) != 2 {
		t.Fatalf("ListUsers limit 2: %v", page1)
	}
	page2 := e.mustCall(t, cmd, "ListUsers", `{"limit":2,"after":"`+str(us[1].(map[string]any)["id"])+`"}`)
	if us2, _ := page2["users"].([]any); len(us2) == 0 || str(us2[0].(map[string]any)["id"]) <= str(us[1].(map[string]any)["id"]) {
		t.Fatalf("ListUsers page 2: %v after %v", page2, page1)
	}

	upd := e.mustCall(t, cmd, "UpdateUser", `{"id":"`+uid+`","fields":["display_name","external_id"],"display_name":"Renamed","external_id":"ext2-`+plugin+`"}`)
	if str(upd["display_name"]) != "Renamed" || str(upd["external_id"]) != "ext2-"+plugin || str(upd["email"]) != name+"@corp.example" {
		t.Fatalf("UpdateUser: %v", upd)
	}
	e.wantCode(t, "INVALID_ARGUMENT", cmd, "UpdateUser", `{"id":"`+uid+`","fields":["display_name","shoe_size"],"display_name":"Nope"}`)
	e.wantCode(t, "ALREADY_EXISTS", cmd, "UpdateUser", `{"id":"`+uid+`","fields":["username"],"username":"bob"}`)
	e.wantCode(t, "NOT_FOUND", cmd, "UpdateUser", `{"id":"00000000-0000-0000-0000-00000000000f","fields":["display_name"]}`)
	got := e.mustCall(t, cmd, "ListUsers", `{"username":"`+name+`"}`)
	if u0 := got["users"].([]any)[0].(map[string]any); str(u0["display_name"]) != "Renamed" || str(u0["username"]) != name {
		t.Fatalf("a refused update changed the account: %v", u0)
	}
	// The superadmin's account is out of a plugin's reach.
	e.wantCode(t, "PERMISSION_DENIED", cmd, "UpdateUser", `{"id":"`+e.admin.ID+`","fields":["email"],"email":"evil@x.example"}`)
	e.wantCode(t, "PERMISSION_DENIED", cmd, "SetUserActive", `{"id":"`+e.admin.ID+`","active":false}`)

	off := e.mustCall(t, cmd, "SetUserActive", `{"id":"`+uid+`","active":false}`)
	if off["deactivated"] != true {
		t.Fatalf("deactivate: %v", off)
	}
	on := e.mustCall(t, cmd, "SetUserActive", `{"id":"`+uid+`","active":true}`)
	if on["deactivated"] == true {
		t.Fatalf("reactivate: %v", on)
	}
	// A provisioned account has no password.
	if _, err := (&client.API{Base: e.URL}).Login(context.Background(), name, "anything-at-all"); err == nil {
		t.Fatal("a provisioned account logged in with a password")
	}
}

// Role assignments follow the escalation rules with subject plugin:<id>.
func testRoles(t *testing.T, e *env, cmd, plugin string) {
	ctx := context.Background()
	u := e.mustCall(t, cmd, "CreateUser", `{"username":"`+plugin+`-roles","active":true}`)
	uid := str(u["id"])
	sp, err := e.admin.API.CreateSpace(ctx, store.DefaultOrg, plugin+" space")
	if err != nil {
		t.Fatal(err)
	}
	assign := func(role, scope, id string) string {
		return `{"user_id":"` + uid + `","role":"` + role + `","scope":"` + scope + `","scope_id":"` + id + `"}`
	}
	// A plugin holds no role by default: it may assign nothing.
	e.wantCode(t, "PERMISSION_DENIED", cmd, "AssignRole", assign("member", "space", sp.ID))
	// An administrator makes the plugin an orgadmin of the default org.
	if err := e.admin.API.Assign(ctx, client.Assignment{Subject: "plugin:" + plugin, Role: "orgadmin", Scope: "org:" + store.DefaultOrg}); err != nil {
		t.Fatal(err)
	}
	e.mustCall(t, cmd, "AssignRole", assign("spaceadmin", "space", sp.ID))
	e.mustCall(t, cmd, "AssignRole", assign("orgadmin", "org", store.DefaultOrg))
	// Never more than it holds: superadmin.
	e.wantCode(t, "PERMISSION_DENIED", cmd, "AssignRole", assign("superadmin", "system", ""))
	e.wantCode(t, "INVALID_ARGUMENT", cmd, "AssignRole", assign("member", "galaxy", "x"))
	e.wantCode(t, "INVALID_ARGUMENT", cmd, "AssignRole", assign("nosuchrole", "space", sp.ID))
	e.wantCode(t, "NOT_FOUND", cmd, "AssignRole", assign("member", "space", "00000000-0000-0000-0000-0000000000aa"))
	// A room role is a membership: the user is in the room at once.
	e.mustCall(t, cmd, "AssignRole", assign("roomadmin", "room", e.room))
	if ms := members(t, e, e.room); ms[uid] != "owner" {
		t.Fatalf("members after a room role: %v", ms)
	}
	roles := e.mustCall(t, cmd, "ListRoles", `{"user_id":"`+uid+`"}`)
	want := map[string]bool{"spaceadmin@space:" + sp.ID: true, "orgadmin@org:" + store.DefaultOrg: true,
		"member@org:" + store.DefaultOrg: true, "roomadmin@room:" + e.room: true}
	for _, a := range roles["assignments"].([]any) {
		am := a.(map[string]any)
		delete(want, str(am["role"])+"@"+str(am["scope"])+":"+str(am["scope_id"]))
	}
	if len(want) != 0 {
		t.Fatalf("ListRoles %v misses %v", roles, want)
	}
	allowed := e.mustCall(t, cmd, "CheckPermission", `{"user_id":"`+uid+`","action":"room.kick","object_kind":"room","object_id":"`+e.room+`"}`)
	if allowed["allowed"] != true {
		t.Fatalf("CheckPermission room.kick for a roomadmin: %v", allowed)
	}
	denied := e.mustCall(t, cmd, "CheckPermission", `{"user_id":"`+e.bob.ID+`","action":"room.kick","object_kind":"room","object_id":"`+e.room+`"}`)
	if denied["allowed"] == true {
		t.Fatalf("CheckPermission room.kick for a member: %v", denied)
	}
	e.wantCode(t, "INVALID_ARGUMENT", cmd, "CheckPermission", `{"user_id":"`+uid+`","action":"fly","object_kind":"system"}`)
	e.wantCode(t, "NOT_FOUND", cmd, "CheckPermission", `{"user_id":"`+uid+`","action":"room.read","object_kind":"room","object_id":"00000000-0000-0000-0000-0000000000aa"}`)

	e.mustCall(t, cmd, "RemoveRole", assign("roomadmin", "room", e.room))
	if ms := members(t, e, e.room); ms[uid] != "" {
		t.Fatalf("still a member after the room role was removed: %v", ms)
	}
	e.wantCode(t, "NOT_FOUND", cmd, "RemoveRole", assign("roomadmin", "room", e.room))
	e.mustCall(t, cmd, "RemoveRole", assign("spaceadmin", "space", sp.ID))
	e.wantCode(t, "NOT_FOUND", cmd, "RemoveRole", assign("spaceadmin", "space", sp.ID))
	if err := e.admin.API.Unassign(ctx, client.Assignment{Subject: "plugin:" + plugin, Role: "orgadmin", Scope: "org:" + store.DefaultOrg}); err != nil {
		t.Fatal(err)
	}
	// Without its role the plugin can no longer take one away either.
	e.wantCode(t, "PERMISSION_DENIED", cmd, "RemoveRole", assign("orgadmin", "org", store.DefaultOrg))
}

// GET /v1/auth/methods lists the password and the granted plugins' buttons;
// a plugin's button goes when the plugin stops.
func testLoginMethods(t *testing.T, e *env) {
	e.wantCode(t, "INVALID_ARGUMENT", "idp", "RegisterLoginMethod", `{"id":"evil","label":"Evil","path":"//evil.example/"}`)
	e.wantCode(t, "INVALID_ARGUMENT", "wcall", "RegisterLoginMethod", `{"id":"x","label":"","path":"/x"}`)
	e.mustCall(t, "wcall", "RegisterLoginMethod", `{"id":"wasm","label":"Sign in with WASM","path":"/start"}`)
	_, out := rest(t, e, "GET", "/v1/auth/methods", "", nil)
	var got []string
	for _, m := range out["methods"].([]any) {
		mm := m.(map[string]any)
		got = append(got, str(mm["kind"])+":"+str(mm["plugin"])+":"+str(mm["label"])+":"+str(mm["url"]))
	}
	want := "password::Username and password:|plugin:idp:Sign in with TestID:/plugins/idp/login|plugin:widp:Sign in with WASM:/plugins/widp/start"
	if strings.Join(got, "|") != want {
		t.Fatalf("methods %v\nwant %s", got, want)
	}
}

// A password login of an mfa- user gets a challenge; the plugin's factor
// page confirms it; the client completes with challenge and secret.
func testSecondFactor(t *testing.T, e *env) {
	ctx := context.Background()
	if _, err := e.API().Register(ctx, "mfa-carol", "password-carol", ""); err != nil {
		t.Fatal(err)
	}
	login := func() map[string]any {
		st, out := rest(t, e, "POST", "/v1/auth/login", "", map[string]any{"username": "mfa-carol", "password": "password-carol"})
		if st != 401 || out["mfa_required"] != true || out["code"] != protocol.CodeUnauthorized || str(out["access_token"]) != "" {
			t.Fatalf("login of mfa-carol: %d %v; want 401 mfa_required", st, out)
		}
		return out
	}
	out := login()
	ch, secret := str(out["challenge"]), str(out["secret"])
	fs, _ := out["factors"].([]any)
	if ch == "" || secret == "" || len(fs) != 1 {
		t.Fatalf("challenge answer: %v", out)
	}
	f := fs[0].(map[string]any)
	// Only the plugin holding the identity grant is asked (idbare runs the
	// same program without it).
	if str(f["plugin"]) != "idp" || str(f["id"]) != "code" || str(f["url"]) != "/plugins/idp/mfa" {
		t.Fatalf("factor %v", f)
	}
	complete := func(ch, secret string) (int, map[string]any) {
		return rest(t, e, "POST", "/v1/auth/mfa/complete", "", map[string]any{"challenge": ch, "secret": secret})
	}
	if st, body := complete(ch, secret); st != 401 || !strings.Contains(str(body["message"]), "not been confirmed") {
		t.Fatalf("complete before the factor: %d %v", st, body)
	}
	st, _, body := page(t, e, "/plugins/idp/mfa?challenge="+url.QueryEscape(ch), nil)
	if st != 200 || !strings.Contains(body, "Code for mfa-carol") {
		t.Fatalf("factor page: %d %s", st, body)
	}
	st, _, body = page(t, e, "/plugins/idp/mfa", url.Values{"challenge": {ch}, "code": {"000000"}})
	if st != 200 || !strings.Contains(body, "Wrong code") {
		t.Fatalf("wrong code: %d %s", st, body)
	}
	st, loc, body := page(t, e, "/plugins/idp/mfa", url.Values{"challenge": {ch}, "code": {"424242"}})
	if st != 302 || loc != "/#/login/mfa/"+url.PathEscape(ch) {
		t.Fatalf("right code: %d %q %s", st, loc, body)
	}
	if st, _ := complete(ch, "wrong-secret"); st != 401 {
		t.Fatalf("complete with a wrong secret: %d", st)
	}
	st, tok := complete(ch, secret)
	if st != 200 || str(tok["access_token"]) == "" {
		t.Fatalf("complete: %d %v", st, tok)
	}
	if st, _ := complete(ch, secret); st != 401 {
		t.Fatalf("second completion of one challenge: %d", st)
	}
	// Another plugin cannot see or confirm idp's challenge.
	out = login()
	e.wantCode(t, "NOT_FOUND", "wcall", "GetLoginChallenge", `{"challenge":"`+str(out["challenge"])+`"}`)
	e.wantCode(t, "NOT_FOUND", "wcall", "ConfirmSecondFactor", `{"challenge":"`+str(out["challenge"])+`","factor":"code","ok":true}`)
	e.wantCode(t, "INVALID_ARGUMENT", "idp", "ConfirmSecondFactor", `{"challenge":"`+str(out["challenge"])+`","factor":"sms","ok":true}`)
	// Failed factor attempts count toward lockout (5 by default): the one
	// that locks ends the challenge, and the account stays locked.
	ch = str(out["challenge"])
	for i := 1; i <= 4; i++ {
		if r := e.mustCall(t, "idp", "ConfirmSecondFactor", `{"challenge":"`+ch+`","factor":"code","ok":false}`); r["confirmed"] == true {
			t.Fatalf("failed attempt %d confirmed the challenge: %v", i, r)
		}
	}
	e.wantCode(t, "RESOURCE_EXHAUSTED", "idp", "ConfirmSecondFactor", `{"challenge":"`+ch+`","factor":"code","ok":false}`)
	e.wantCode(t, "NOT_FOUND", "idp", "ConfirmSecondFactor", `{"challenge":"`+ch+`","factor":"code","ok":true}`)
	if st, body := rest(t, e, "POST", "/v1/auth/login", "", map[string]any{"username": "mfa-carol", "password": "password-carol"}); st != 429 {
		t.Fatalf("login of a locked account: %d %v; want 429", st, body)
	}
}

// A WASM module is a second factor too: it offers its factor, reads and
// confirms the challenge through host_call; a module without the identity
// grant is never asked.
func testWASMSecondFactor(t *testing.T, e *env) {
	if _, err := e.API().Register(context.Background(), "wmfa-hank", "password-hank", ""); err != nil {
		t.Fatal(err)
	}
	st, out := rest(t, e, "POST", "/v1/auth/login", "", map[string]any{"username": "wmfa-hank", "password": "password-hank"})
	fs, _ := out["factors"].([]any)
	if st != 401 || len(fs) != 1 {
		t.Fatalf("login of wmfa-hank: %d %v; want one factor", st, out)
	}
	if f := fs[0].(map[string]any); str(f["plugin"]) != "widp" || str(f["id"]) != "wcode" || str(f["url"]) != "/plugins/widp/wmfa" {
		t.Fatalf("factor %v", f)
	}
	ch := str(out["challenge"])
	if got := e.mustCall(t, "wcall", "GetLoginChallenge", `{"challenge":"`+ch+`"}`); str(got["username"]) != "wmfa-hank" || got["confirmed"] == true {
		t.Fatalf("GetLoginChallenge: %v", got)
	}
	if got := e.mustCall(t, "wcall", "ConfirmSecondFactor", `{"challenge":"`+ch+`","factor":"wcode","ok":true}`); got["confirmed"] != true {
		t.Fatalf("ConfirmSecondFactor: %v", got)
	}
	st, tok := rest(t, e, "POST", "/v1/auth/mfa/complete", "", map[string]any{"challenge": ch, "secret": str(out["secret"])})
	if st != 200 || str(tok["access_token"]) == "" {
		t.Fatalf("complete: %d %v", st, tok)
	}
}

// A plugin deactivating a user closes the user's live WebSocket at once and
// revokes their refresh tokens; reactivation lets them log in again.
func testDeactivation(t *testing.T, e *env) {
	ctx := context.Background()
	dave := e.NewUser(t, "dave")
	tok, err := e.API().Login(ctx, "dave", "password-dave")
	if err != nil {
		t.Fatal(err)
	}
	dc := e.Dial(t, dave)
	start := time.Now()
	e.mustCall(t, "idp", "SetUserActive", `{"id":"`+dave.ID+`","active":false}`)
	select {
	case <-dc.Done():
	case <-time.After(30 * time.Second): // hang guard, not a timing assertion
		t.Fatal("dave's WebSocket is still open 30s after his deactivation")
	}
	t.Logf("WebSocket closed %v after the SetUserActive call started", time.Since(start).Round(time.Millisecond))
	if g := dc.Goodbye(); g == nil || g.Reason != protocol.ReasonRevoked {
		t.Fatalf("goodbye %+v; want reason %s", g, protocol.ReasonRevoked)
	}
	if _, err := e.API().Refresh(ctx, tok.RefreshToken); err == nil {
		t.Fatal("refresh token works after deactivation")
	}
	if _, err := e.API().Login(ctx, "dave", "password-dave"); err == nil {
		t.Fatal("deactivated account logged in")
	}
	e.mustCall(t, "wcall", "SetUserActive", `{"id":"`+dave.ID+`","active":true}`)
	if _, err := e.API().Login(ctx, "dave", "password-dave"); err != nil {
		t.Fatalf("login after reactivation: %v", err)
	}
}

// A factor plugin that fails refuses logins (closed by default); with its
// policy set open, logins go through; a stopped plugin's button goes away.
func TestSecondFactorPluginDown(t *testing.T) {
	bin := identityPlugin(t)
	yaml := func(policy string) string {
		return fmt.Sprintf(`plugins:
  - id: broken
    command: [%q, broken-factor]
    grants: [identity]
%s`, bin, policy)
	}
	e := start(t, "plugins: []\n") // start signs people in: load the plugin after
	e.write(t, yaml(""))
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := e.API().Login(ctx, "bob", "password-bob")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != protocol.CodeUnavailable || !strings.Contains(ae.Message, "broken") {
		t.Fatalf("login with a failing factor plugin: %v; want 503 unavailable naming it", err)
	}
	_, out := rest(t, e, "GET", "/v1/auth/methods", "", nil)
	if len(out["methods"].([]any)) != 2 {
		t.Fatalf("methods: %v; want password and broken's button", out)
	}
	e.write(t, yaml("    failure: {SecondFactorRequired: open}\n"))
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	if _, err := e.API().Login(ctx, "bob", "password-bob"); err != nil {
		t.Fatalf("login with the policy open: %v", err)
	}
	e.write(t, "plugins: []\n")
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	_, out = rest(t, e, "GET", "/v1/auth/methods", "", nil)
	if len(out["methods"].([]any)) != 1 {
		t.Fatalf("methods after the plugin stopped: %v; want only the password", out)
	}
}
