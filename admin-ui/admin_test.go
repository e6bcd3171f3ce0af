package adminui_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/client"
)

// helloPlugin builds the SDK's example plugin (a separate program, as in
// production) and returns a plugins.yaml that runs it.
func helloPlugin(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		servertest.SkipOrFail(t, "the plugin test builds sdk/examples/hello and needs the go tool on PATH")
	}
	bin := filepath.Join(t.TempDir(), "hello")
	if out, err := exec.Command("go", "build", "-o", bin, "../sdk/examples/hello").CombinedOutput(); err != nil {
		t.Fatalf("build sdk/examples/hello: %v\n%s", err, out)
	}
	return "# plugins for the console test\nplugins:\n  - id: hello\n    command: [\"" + bin + "\"]\n    grants: [commands]\n    config: {word: darn}\n"
}

// TestAdminConsole: the admin's People and Plugins views. An admin revokes a
// user's session, deactivates the account and revokes a device, and each
// time the user's open console signs out; an admin disables a plugin, the
// card shows it, its word filter stops applying, and enabling brings it back.
func TestAdminConsole(t *testing.T) {
	pluginsFile := filepath.Join(t.TempDir(), "plugins.yaml")
	if err := os.WriteFile(pluginsFile, []byte(helloPlugin(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Plugins = pluginsFile }})
	alloc := startBrowser(t)
	alice := newPage(t, alloc, "alice")
	bob := newPage(t, alloc, "bob")
	alice.signUp(env.URL, "alice")
	bob.signUp(env.URL, "bob")
	bob.do("create room",
		chromedp.Click(chromedp.ID("new-room")),
		chromedp.SendKeys(chromedp.ID("nr-name"), "bobs-room"),
		chromedp.Click(chromedp.CSS(`#new-room-form button[type=submit]`)),
	)
	bob.until("room open", `document.getElementById('room-title').textContent === 'bobs-room'`)
	// Admin actions ask for confirmation; the test says yes.
	eval[bool](alice, `(window.confirm = () => true, true)`)

	// ---- People ----
	alice.do("open people", chromedp.Click(chromedp.CSS(`#nav a[data-view=people]`)))
	alice.do("manage bob", chromedp.Click(chromedp.CSS(`button[aria-label="Manage bob"]`)))
	alice.until("bob's details", `document.getElementById('person-title').textContent === 'bob — active'`)
	alice.until("bob's session listed", `document.querySelectorAll('#person-body tr[data-session] button').length === 1`)
	alice.do("revoke it", chromedp.Click(chromedp.CSS(`#person-body tr[data-session] button`)))
	bob.until("bob signed out by the revocation", `!document.getElementById('view-auth').hidden`)
	alice.until("session gone", `document.querySelectorAll('#person-body tr[data-session] button').length === 0`)

	bob.clear("auth-username")
	bob.do("log in again",
		chromedp.SendKeys(chromedp.ID("auth-username"), "bob"),
		chromedp.SendKeys(chromedp.ID("auth-password"), "password-bob"),
		chromedp.Click(chromedp.ID("auth-submit")),
		chromedp.WaitVisible(chromedp.ID("view-chat")),
	)
	alice.do("deactivate bob", chromedp.Click(chromedp.Search(`//button[text()='Deactivate account']`)))
	alice.until("bob deactivated", `document.getElementById('person-title').textContent === 'bob — deactivated'`)
	alice.until("table says so", `document.querySelector('#people-table tr[data-user=bob]').textContent.includes('deactivated')`)
	bob.until("bob signed out by the deactivation", `!document.getElementById('view-auth').hidden`)
	bob.clear("auth-username")
	bob.do("try to log in",
		chromedp.SendKeys(chromedp.ID("auth-username"), "bob"),
		chromedp.SendKeys(chromedp.ID("auth-password"), "password-bob"),
		chromedp.Click(chromedp.ID("auth-submit")),
	)
	bob.until("login refused with a code", `[...document.querySelectorAll('#errors .error')].some(e => /Log in: (unauthorized|forbidden) /.test(e.textContent))`)
	alice.do("reactivate bob", chromedp.Click(chromedp.Search(`//button[text()='Reactivate account']`)))
	alice.until("bob active", `document.getElementById('person-title').textContent === 'bob — active'`)
	bob.do("log in once more", chromedp.Click(chromedp.ID("auth-submit")), chromedp.WaitVisible(chromedp.ID("view-chat")))
	bob.until("connected", `document.getElementById('conn-state').dataset.state === 'online'`)
	// Deactivation took bob out of every room; reactivation does not put him back.
	bob.until("bobs-room no longer listed", `![...document.querySelectorAll('#room-list a')].some(a => a.textContent.includes('bobs-room'))`)
	bob.do("create a room again",
		chromedp.Click(chromedp.ID("new-room")),
		chromedp.SendKeys(chromedp.ID("nr-name"), "bobs-new-room"),
		chromedp.Click(chromedp.CSS(`#new-room-form button[type=submit]`)),
	)
	bob.until("new room open", `document.getElementById('room-title').textContent === 'bobs-new-room'`)
	alice.do("refresh people", chromedp.Click(chromedp.CSS(`#people-filter button`)))
	alice.until("bob online", `document.querySelector('#people-table tr[data-user=bob]').textContent.includes('online')`)
	alice.do("manage bob again", chromedp.Click(chromedp.CSS(`button[aria-label="Manage bob"]`)))
	alice.until("bob's new session listed", `document.querySelectorAll('#person-body tr[data-session] button').length === 1`)
	alice.until("on the Web console device", `[...document.querySelectorAll('#person-body tr[data-device]')].map(r => r.cells[0].textContent).join() === 'Web console'`)
	if dev := eval[string](alice, `document.querySelector('#person-body tr[data-session]').cells[1].textContent`); dev != "Web console" {
		t.Errorf("the session names its device %q, want Web console", dev)
	}
	alice.do("revoke the device", chromedp.Click(chromedp.CSS(`#person-body tr[data-device] button`)))
	bob.until("bob signed out by the device revocation", `!document.getElementById('view-auth').hidden`)
	alice.until("device and session gone", `document.querySelectorAll('#person-body tr[data-device] button, #person-body tr[data-session] button').length === 0`)
	// This browser's device is gone; the next login makes a new one.
	bob.clear("auth-username")
	bob.do("log in on a new device",
		chromedp.SendKeys(chromedp.ID("auth-username"), "bob"),
		chromedp.SendKeys(chromedp.ID("auth-password"), "password-bob"),
		chromedp.Click(chromedp.ID("auth-submit")),
		chromedp.WaitVisible(chromedp.ID("view-chat")),
	)
	alice.do("manage bob once more", chromedp.Click(chromedp.CSS(`button[aria-label="Manage bob"]`)))
	alice.until("one new device", `document.querySelectorAll('#person-body tr[data-device] button').length === 1`)

	// ---- Plugins ----
	// Secrets in a plugin's config are masked by the console too (the
	// server should mask them first; this is the second fence).
	masked := eval[string](alice, `import('/js/admin.js').then(m => JSON.stringify(m.mask(
		{word: 'darn', api_token: 's3cret', nested: {password: 'pw', clientSecret: 'cs', list: [{private_key: 'k'}]}, key: 'x', keys: 2})))`,
		chromedp.EvalAwaitPromise)
	if want := `{"word":"darn","api_token":"••••••","nested":{"password":"••••••","clientSecret":"••••••","list":[{"private_key":"••••••"}]},"key":"••••••","keys":2}`; masked != want {
		t.Errorf("mask:\n got %s\nwant %s", masked, want)
	}
	alice.do("open plugins", chromedp.Click(chromedp.CSS(`#nav a[data-view=plugins]`)))
	alice.until("hello running", `(document.querySelector('[data-plugin=hello] .state') || {}).textContent === 'running'`)
	if !eval[bool](alice, `[...document.querySelectorAll('[data-plugin=hello] th')].some(th => th.textContent.startsWith('MessageWillBePosted'))`) {
		t.Error("the hello card does not list its MessageWillBePosted hook")
	}
	// The plugin is in force: its word filter refuses bob's message, and
	// bob sees the plugin's reason with the error code.
	bob.send("well darn")
	bob.until("refused", `[...document.querySelectorAll('#messages .msg.failed .status')].some(e => e.textContent.includes('forbidden'))`)
	// Its slash command answers bob alone, in his room view.
	bob.send("/hello console")
	bob.until("command answered", `[...document.querySelectorAll('#messages .msg.ephemeral')].some(li =>
		li.querySelector('.text').textContent === 'Hello, console!' && li.textContent.includes('only you can see this'))`)
	alice.do("refresh", chromedp.Click(chromedp.ID("plugins-refresh")))
	alice.until("calls counted", `[...document.querySelectorAll('[data-plugin=hello] tr')].some(tr => tr.textContent.startsWith('MessageWillBePosted') && tr.children[1].textContent !== '0')`)
	if cfg := eval[string](alice, `document.querySelector('[data-plugin=hello] pre.config')?.textContent || ''`); !strings.Contains(cfg, `"word": "darn"`) {
		t.Errorf("effective config shown as %q", cfg)
	}
	alice.do("show the config", chromedp.Click(chromedp.CSS(`[data-plugin=hello] summary`)))
	alice.screenshot("plugins.png")

	alice.do("disable", chromedp.Click(chromedp.CSS(`button[aria-label="Disable hello"]`)))
	alice.until("hello disabled", `(document.querySelector('[data-plugin=hello] .state') || {}).textContent === 'disabled'`)
	alice.until("enable offered", `!!document.querySelector('button[aria-label="Enable hello"]')`)
	bob.send("darn, it works now")
	bob.waitText("darn, it works now")
	alice.do("enable", chromedp.Click(chromedp.CSS(`button[aria-label="Enable hello"]`)))
	alice.until("hello running again", `(document.querySelector('[data-plugin=hello] .state') || {}).textContent === 'running'`)
	bob.send("darn once more")
	bob.until("refused again", `[...document.querySelectorAll('#messages .msg.failed')].some(li => li.querySelector('.text').textContent === 'darn once more')`)
}

// TestInviteOnlySignUp: on an invite-only server, signing up without an
// invite is refused with the server's code; an invite link opens the sign-up
// form with the code filled in; an admin makes links in the People view and
// sees them used up.
func TestInviteOnlySignUp(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Registration = "invite" }})
	// The first invite comes from the operator (`unhidra invite`).
	first, err := auth.CreateInvite(context.Background(), env.Server.Store(), "", auth.InviteRequest{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	alloc := startBrowser(t)
	alice := newPage(t, alloc, "alice")
	bob := newPage(t, alloc, "bob")

	bob.do("sign up without an invite",
		chromedp.Navigate(env.URL),
		chromedp.WaitVisible(chromedp.ID("auth-form")),
		chromedp.Click(chromedp.ID("auth-toggle")),
		chromedp.SendKeys(chromedp.ID("auth-username"), "bob"),
		chromedp.SendKeys(chromedp.ID("auth-password"), "password-bob"),
		chromedp.Click(chromedp.ID("auth-submit")),
	)
	bob.until("refused with its code", `[...document.querySelectorAll('#errors .error')].some(e => e.textContent.includes('Sign up: forbidden registration needs a valid invite'))`)

	alice.do("follow the operator's invite link",
		chromedp.Navigate(env.URL+"/#/join/"+first.Token),
		chromedp.WaitVisible(chromedp.ID("auth-invite")),
	)
	if got := eval[string](alice, `document.getElementById('auth-invite').value`); got != first.Token {
		t.Fatalf("invite field holds %q, want the link's token", got)
	}
	alice.do("sign up",
		chromedp.SendKeys(chromedp.ID("auth-username"), "alice"),
		chromedp.SendKeys(chromedp.ID("auth-password"), "password-alice"),
		chromedp.Click(chromedp.ID("auth-submit")),
		chromedp.WaitVisible(chromedp.ID("view-chat")),
	)
	alice.do("open people", chromedp.Click(chromedp.CSS(`#nav a[data-view=people]`)))
	alice.do("make an invite link",
		chromedp.SendKeys(chromedp.ID("invite-note"), "for bob"),
		chromedp.Click(chromedp.CSS(`#invite-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("invite-link")),
	)
	link := eval[string](alice, `document.getElementById('invite-link').value`)
	if !strings.HasPrefix(link, env.URL+"/#/join/") {
		t.Fatalf("invite link %q", link)
	}
	alice.until("listed", `(document.querySelector('#invite-list tr[data-invite]') || {}).textContent?.startsWith('for bob0 of 1')`)

	bob.clear("auth-username")
	bob.clear("auth-password")
	bob.do("follow bob's link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("auth-invite")))
	bob.clear("auth-username")
	bob.do("sign up with it",
		chromedp.SendKeys(chromedp.ID("auth-username"), "bob"),
		chromedp.SendKeys(chromedp.ID("auth-password"), "password-bob"),
		chromedp.Click(chromedp.ID("auth-submit")),
		chromedp.WaitVisible(chromedp.ID("view-chat")),
	)
	alice.do("refresh", chromedp.Click(chromedp.CSS(`#people-filter button`)))
	alice.until("used up", `(document.querySelector('#invite-list tr[data-invite]') || {}).textContent?.includes('1 of 1') && document.querySelector('#invite-list tr[data-invite]').textContent.includes('used up')`)
	alice.until("bob is a user", `!!document.querySelector('#people-table tr[data-user=bob]')`)
}

// TestAccount: any user sees where they are signed in, signs another session
// out (its console returns to sign-in), and changes their password: a wrong
// current password is refused with the server's code, the right one signs
// out the other sessions, and the new password logs in. Then they block a
// person, and everyone, from adding them to rooms, and lift both blocks.
func TestAccount(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	root := env.NewUser(t, "root") // the admin; carol is a plain member
	alloc := startBrowser(t)
	here := newPage(t, alloc, "carol-here")
	there := newPage(t, alloc, "carol-there")
	here.signUp(env.URL, "carol")
	login := func(p *page, password string) {
		t.Helper()
		p.do("open", chromedp.Navigate(env.URL), chromedp.WaitVisible(chromedp.ID("auth-form")))
		p.clear("auth-username")
		p.clear("auth-password")
		p.do("log in",
			chromedp.SendKeys(chromedp.ID("auth-username"), "carol"),
			chromedp.SendKeys(chromedp.ID("auth-password"), password),
			chromedp.Click(chromedp.ID("auth-submit")),
			chromedp.WaitVisible(chromedp.ID("view-chat")))
	}
	login(there, "password-carol")

	here.do("open account", chromedp.Click(chromedp.CSS(`#nav a[data-view=account]`)))
	here.until("two sessions, this one marked", `document.querySelectorAll('#my-sessions tr[data-session]').length === 2 &&
		document.querySelectorAll('#my-sessions tr[data-current]').length === 1`)
	here.do("sign the other out", chromedp.Click(chromedp.CSS(`#my-sessions tr[data-session]:not([data-current]) button`)))
	there.until("the other console is signed out", `!document.getElementById('view-auth').hidden`)
	here.until("one session left", `document.querySelectorAll('#my-sessions tr[data-session]').length === 1`)

	login(there, "password-carol")
	here.do("wrong current password",
		chromedp.SendKeys(chromedp.ID("pw-current"), "not-my-password"),
		chromedp.SendKeys(chromedp.ID("pw-new"), "carol-new-password"),
		chromedp.Click(chromedp.CSS(`#pw-form button[type=submit]`)))
	here.until("refused with its code", `[...document.querySelectorAll('#errors .error')].some(e => e.textContent.startsWith('Change password: forbidden '))`)
	here.clear("pw-current")
	here.clear("pw-new")
	here.do("right current password",
		chromedp.SendKeys(chromedp.ID("pw-current"), "password-carol"),
		chromedp.SendKeys(chromedp.ID("pw-new"), "carol-new-password"),
		chromedp.Click(chromedp.CSS(`#pw-form button[type=submit]`)))
	here.until("changed", `document.getElementById('pw-status').textContent === 'Password changed; 1 other session signed out.'`)
	there.until("the other console is signed out again", `!document.getElementById('view-auth').hidden`)
	if !eval[bool](here, `document.getElementById('view-auth').hidden`) {
		t.Fatal("the session that changed the password was signed out")
	}
	login(there, "carol-new-password")

	carol := env.API()
	if _, err := carol.Login(context.Background(), "carol", "carol-new-password"); err != nil {
		t.Fatal(err)
	}
	blocked := func() string {
		var out struct {
			Blocks []struct {
				User string `json:"user"`
			} `json:"blocks"`
		}
		if err := carol.Do(context.Background(), "GET", "/v1/me/blocks", nil, &out); err != nil {
			t.Fatal(err)
		}
		var us []string
		for _, b := range out.Blocks {
			us = append(us, b.User)
		}
		slices.Sort(us)
		return strings.Join(us, ",")
	}
	// Dismiss the error shown above, as a person would: it covers the lower part of the view.
	eval[any](here, `document.querySelectorAll('#errors .error button').forEach(b => b.click())`)
	here.do("block root", chromedp.SendKeys(chromedp.ID("block-user"), "root"), chromedp.Click(chromedp.CSS(`#block-form button[type=submit]`)))
	here.until("root listed", `[...document.querySelectorAll('#my-blocks tr[data-block]')].map(r => r.cells[0].textContent).join() === 'root'`)
	if _, err := root.API.CreateRoom(context.Background(), "", "group", "carol"); servertest.Code(err) != "forbidden" {
		t.Fatalf("root puts carol into a group after the block: %v", err)
	}
	here.do("block everyone", chromedp.Click(chromedp.ID("block-all")))
	here.until("everyone blocked", `document.getElementById('my-blocks').dataset.everyone === '1' && document.querySelectorAll('#my-blocks tr[data-block]').length === 1`)
	if got := blocked(); got != "*,"+root.ID {
		t.Fatalf("carol's blocks after the console: %q", got)
	}
	here.do("unblock root", chromedp.Click(chromedp.CSS(`#my-blocks tr[data-block] button`)))
	here.until("root no longer listed", `document.querySelectorAll('#my-blocks tr[data-block]').length === 0`)
	here.do("let everyone add again", chromedp.Click(chromedp.ID("block-all")))
	here.until("everyone may add again", `document.getElementById('my-blocks').dataset.everyone === '0' && !document.getElementById('block-all').checked`)
	if got := blocked(); got != "" {
		t.Fatalf("carol's blocks after lifting them: %q", got)
	}
}

// TestPeopleRoles: in the People view a superadmin refuses nothing silently
// (a role at the wrong level is refused with the server's code), grants bob
// orgadmin of the default org, and the grant is real: the API lists it and
// bob may now do what only an org's admins may (list its assignments, create
// a space); the admin sets bob's clearance; removing the role takes those
// powers away again.
func TestPeopleRoles(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	alloc := startBrowser(t)
	alice := newPage(t, alloc, "alice")
	alice.signUp(env.URL, "alice") // the first account: superadmin
	bob := env.NewUser(t, "bob")
	ctx := context.Background()
	admin := env.API()
	if _, err := admin.Login(ctx, "alice", "password-alice"); err != nil {
		t.Fatal(err)
	}
	var eng struct {
		ID string `json:"id"`
	}
	if err := admin.Do(ctx, http.MethodPost, "/v1/spaces", map[string]string{"name": "Engineering"}, &eng); err != nil {
		t.Fatal(err)
	}
	org := "org:" + store.DefaultOrg
	// What only the org's admins may do, asked as bob: nil or the error.
	orgAdminCall := func() error {
		var out struct{ Assignments []authz.Assignment }
		return bob.API.Do(ctx, http.MethodGet, "/v1/admin/assignments?scope="+org, nil, &out)
	}
	bobsRoles := func() []string {
		t.Helper()
		var out struct{ Assignments []authz.Assignment }
		if err := admin.Do(ctx, http.MethodGet, "/v1/admin/assignments?subject=user:"+bob.ID, nil, &out); err != nil {
			t.Fatal(err)
		}
		var rs []string
		for _, a := range out.Assignments {
			rs = append(rs, a.Role+"@"+a.Scope)
		}
		return rs
	}
	forbidden := func(err error) bool {
		var ae *client.APIError
		return errors.As(err, &ae) && ae.Status == http.StatusForbidden
	}
	if err := orgAdminCall(); !forbidden(err) {
		t.Fatalf("bob lists the org's assignments before the grant: %v", err)
	}
	eval[bool](alice, `(window.confirm = () => true, true)`)
	// choose picks an option of a select as a user would (change event).
	choose := func(id, value string) {
		t.Helper()
		if !eval[bool](alice, `(s => { s.value = `+js(value)+`; s.dispatchEvent(new Event('change')); return s.value === `+js(value)+` })(document.getElementById(`+js(id)+`))`) {
			t.Fatalf("%s has no option %s", id, value)
		}
	}

	alice.do("open people", chromedp.Click(chromedp.CSS(`#nav a[data-view=people]`)))
	alice.do("manage bob", chromedp.Click(chromedp.CSS(`button[aria-label="Manage bob"]`)))
	alice.until("bob's roles", `!!document.getElementById('assign-form') &&
		!!document.querySelector('#person-roles tr[data-role=member][data-scope="`+org+`"]')`)
	if got := eval[string](alice, `document.querySelector('#person-roles tr[data-role=member]').cells[1].textContent`); !strings.HasPrefix(got, "Organization Default") {
		t.Errorf("the default org's membership shows scope %q, want its name", got)
	}
	if got := eval[string](alice, `[...document.querySelectorAll('#assign-role option')].map(o => o.value).join()`); got != "superadmin,orgadmin,spaceadmin,roomadmin,member,guest" {
		t.Errorf("role picker offers %q", got)
	}
	// Picking orgadmin moves the scope to an org; a system scope is refused
	// by the server, and the console says why.
	choose("assign-role", "orgadmin")
	choose("assign-kind", "sys")
	alice.do("orgadmin in the system scope",
		chromedp.Click(chromedp.CSS(`#assign-form button[type=submit]`)))
	alice.until("refused with its code", `[...document.querySelectorAll('#errors .error')].some(e => e.textContent.startsWith('Assign role: bad_request ') && e.textContent.includes('cannot be assigned at sys level'))`)
	if rs := bobsRoles(); len(rs) != 1 {
		t.Fatalf("the refused grant changed bob's roles: %v", rs)
	}
	// The space picker names the admin's spaces.
	choose("assign-kind", "space")
	if got := eval[string](alice, `[...document.querySelectorAll('#assign-target option')].map(o => o.textContent + '=' + o.value).join()`); !strings.Contains(got, "Engineering=space:"+eng.ID) {
		t.Errorf("space picker offers %q", got)
	}
	choose("assign-kind", "org")
	choose("assign-target", org)
	alice.do("orgadmin of the default org",
		chromedp.Click(chromedp.CSS(`#assign-form button[type=submit]`)))
	alice.until("listed", `!!document.querySelector('#person-roles tr[data-role=orgadmin][data-scope="`+org+`"]')`)
	if rs := bobsRoles(); !slices.Contains(rs, "orgadmin@"+org) {
		t.Fatalf("the API does not list the grant: %v", rs)
	}
	if err := orgAdminCall(); err != nil {
		t.Fatalf("bob, orgadmin, may not list the org's assignments: %v", err)
	}
	if err := bob.API.Do(ctx, http.MethodPost, "/v1/spaces", map[string]string{"name": "Bob's"}, nil); err != nil {
		t.Fatalf("bob, orgadmin, may not create a space: %v", err)
	}

	// Clearance: out of range is refused by the form; 40 is set.
	alice.do("clearance 40", chromedp.SetValue(chromedp.ID("clearance"), "40"), chromedp.Click(chromedp.CSS(`#clearance-form button[type=submit]`)))
	alice.until("set", `document.getElementById('clearance-status').textContent === 'Clearance set to 40.'`)
	var users struct{ Users []struct{ Clearance *int } }
	if err := admin.Do(ctx, http.MethodGet, "/v1/users?q=bob", nil, &users); err != nil {
		t.Fatal(err)
	}
	if len(users.Users) != 1 || users.Users[0].Clearance == nil || *users.Users[0].Clearance != 40 {
		t.Fatalf("bob's clearance after the console set it: %+v", users.Users)
	}
	var asBob struct{ Users []map[string]any }
	if err := bob.API.Do(ctx, http.MethodGet, "/v1/users?q=bob", nil, &asBob); err != nil || len(asBob.Users) != 1 || asBob.Users[0]["clearance"] != nil {
		t.Fatalf("a non-admin sees %v (err %v), want no clearance", asBob.Users, err)
	}
	if got := eval[string](alice, `document.getElementById('assign-target').value`); got != org {
		t.Errorf("after the grant the form picks %q, want the scope just used", got)
	}
	choose("assign-role", "spaceadmin") // the screenshot shows the space picker
	eval[bool](alice, `(document.getElementById('errors').replaceChildren(), document.getElementById('person-roles').scrollIntoView(), true)`)
	alice.screenshot("people.png")

	alice.do("remove orgadmin", chromedp.Click(chromedp.CSS(`button[aria-label="Remove orgadmin in Organization Default"]`)))
	alice.until("gone", `!document.querySelector('#person-roles tr[data-role=orgadmin]') && !!document.querySelector('#person-roles tr[data-role=member]')`)
	if rs := bobsRoles(); slices.Contains(rs, "orgadmin@"+org) {
		t.Fatalf("the API still lists the removed grant: %v", rs)
	}
	if err := orgAdminCall(); !forbidden(err) {
		t.Fatalf("bob lists the org's assignments after the removal: %v", err)
	}
}
