package adminui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
)

// identityPluginYAML builds core/pluginhost/testdata/identityplugin (a sign-in
// button and a second factor for users named mfa-…) and returns a
// plugins.yaml that runs it as plugin "idp".
func identityPluginYAML(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		servertest.SkipOrFail(t, "the sign-in test builds the identity test plugin and needs the go tool on PATH")
	}
	bin := filepath.Join(t.TempDir(), "identityplugin")
	if out, err := exec.Command("go", "build", "-o", bin, "../core/pluginhost/testdata/identityplugin").CombinedOutput(); err != nil {
		t.Fatalf("build the identity test plugin: %v\n%s", err, out)
	}
	return "plugins:\n  - id: idp\n    command: [\"" + bin + "\"]\n    grants: [identity]\n"
}

// syncBuffer collects the server's log lines from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// urlRecorder keeps every URL the browser's tabs sent to a server (requests,
// WebSocket handshakes: fragments are never sent) and every URL they showed
// (navigations and in-document changes, with fragments), and the bodies of
// the /v1/auth requests.
type urlRecorder struct {
	mu     sync.Mutex
	sent   []string
	shown  []string
	bodies []string
}

func (r *urlRecorder) listen(t *testing.T, p *page) {
	t.Helper()
	if _, err := chromedp.Call(p.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("%s: enable network events: %v", p.name, err)
	}
	err := chromedp.Listen(p.ctx, func(ev any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			r.sent = append(r.sent, e.Request.URL)
			if e.Request.URLFragment != "" {
				r.shown = append(r.shown, e.Request.URL+e.Request.URLFragment)
			}
			if strings.Contains(e.Request.URL, "/v1/auth/") {
				for _, pd := range e.Request.PostDataEntries {
					r.bodies = append(r.bodies, string(pd.Bytes))
				}
			}
		case *network.EventWebSocketCreated:
			r.sent = append(r.sent, e.URL)
		case *cdppage.EventFrameNavigated:
			r.shown = append(r.shown, e.Frame.URL+e.Frame.URLFragment)
		case *cdppage.EventNavigatedWithinDocument:
			r.shown = append(r.shown, e.URL)
		}
	})
	if err != nil {
		t.Fatalf("%s: listen: %v", p.name, err)
	}
}

func (r *urlRecorder) snapshot() (sent, shown, bodies []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sent...), append([]string(nil), r.shown...), append([]string(nil), r.bodies...)
}

// tokens returns the access and refresh token the tab holds.
func (p *page) tokens() []string {
	p.t.Helper()
	raw := eval[string](p, `sessionStorage.getItem('unhidra.auth') || ''`)
	var a struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(raw), &a); err != nil || a.Access == "" || a.Refresh == "" {
		p.t.Fatalf("%s: no tokens in the tab after sign-in: %q %v", p.name, raw, err)
	}
	return []string{a.Access, a.Refresh}
}

// signedIn waits for the chat view with an open WebSocket and checks who
// is signed in.
func (p *page) signedIn(env *servertest.Env, username string) {
	p.t.Helper()
	p.do("chat view", chromedp.WaitVisible(chromedp.ID("view-chat")))
	p.until("WebSocket open", `document.getElementById('conn-state').dataset.state === 'online'`)
	if got := eval[string](p, `window.unhidra.me.username`); got != username {
		p.t.Fatalf("%s: signed in as %q, want %q", p.name, got, username)
	}
	if id := eval[string](p, `window.unhidra.me.id`); !env.Server.Chat().Online(id) {
		p.t.Fatalf("%s: the server has no live session of %s", p.name, username)
	}
	if h := eval[string](p, `location.hash`); strings.Contains(h, "/login/") {
		p.t.Fatalf("%s: the login link stayed in the address bar: %q", p.name, h)
	}
}

// TestSignInWithIdentityPlugin: the sign-in page shows the identity
// plugin's button; its page signs a new user in (button → plugin page →
// back with a one-time code → signed in, WebSocket open); a password login
// of an mfa- user gets a second-factor challenge, passes the plugin's factor
// page and ends signed in; an SSO login of an mfa- user needs the factor
// too. No token, code or challenge secret appears in any URL the browser
// sent to a server or in any server log line; codes appear only in URL
// fragments.
func TestSignInWithIdentityPlugin(t *testing.T) {
	pluginsFile := filepath.Join(t.TempDir(), "plugins.yaml")
	if err := os.WriteFile(pluginsFile, []byte(identityPluginYAML(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Plugins = pluginsFile },
		Log: &logs, LogLevel: slog.LevelDebug})
	alloc := startBrowser(t)
	var rec urlRecorder
	var secrets []string            // tokens and challenge secrets the browser held
	var ssoLogins, factorLogins int // completed, so that -run on one subtest checks what ran

	button := chromedp.CSS(`#auth-methods a[data-plugin="idp"]`)
	factor := chromedp.CSS(`#auth-factor-list a[data-plugin="idp"][data-factor="code"]`)
	passFactor := func(p *page) {
		p.do("open the factor page",
			chromedp.WaitVisible(factor),
			chromedp.Click(factor),
			chromedp.WaitVisible(chromedp.ID("tid-code")))
		p.do("wrong code", chromedp.SendKeys(chromedp.ID("tid-code"), "111111"), chromedp.Click(chromedp.ID("tid-confirm")),
			chromedp.WaitVisible(chromedp.ID("tid-error")))
		p.do("right code", chromedp.SendKeys(chromedp.ID("tid-code"), "424242"), chromedp.Click(chromedp.ID("tid-confirm")))
	}

	t.Run("sso", func(t *testing.T) {
		p := newPage(t, alloc, "erin")
		rec.listen(t, p)
		p.do("open the sign-in page", chromedp.Navigate(env.URL), chromedp.WaitVisible(button))
		if l := eval[string](p, `document.querySelector('#auth-methods a[data-plugin="idp"]').textContent`); l != "Sign in with TestID" {
			t.Fatalf("button label %q", l)
		}
		p.screenshot("sign-in.png")
		p.do("sign in through the plugin",
			chromedp.Click(button),
			chromedp.WaitVisible(chromedp.ID("tid-username")),
			chromedp.SendKeys(chromedp.ID("tid-username"), "sso-erin"),
			chromedp.Click(chromedp.ID("tid-submit")))
		p.signedIn(env, "sso-erin")
		secrets = append(secrets, p.tokens()...)
		ssoLogins++
	})

	t.Run("password+factor", func(t *testing.T) {
		if _, err := env.API().Register(context.Background(), "mfa-frank", "password-frank", ""); err != nil {
			t.Fatal(err)
		}
		p := newPage(t, alloc, "frank")
		rec.listen(t, p)
		p.do("log in with a password",
			chromedp.Navigate(env.URL),
			chromedp.WaitVisible(chromedp.ID("auth-form")),
			chromedp.SendKeys(chromedp.ID("auth-username"), "mfa-frank"),
			chromedp.SendKeys(chromedp.ID("auth-password"), "password-frank"),
			chromedp.Click(chromedp.ID("auth-submit")))
		if l := eval[string](p, `(document.querySelector('#auth-factor-list a') || {}).textContent || ''`); l != "" && l != "TestID code" {
			t.Fatalf("factor label %q", l)
		}
		passFactor(p)
		p.signedIn(env, "mfa-frank")
		secrets = append(secrets, p.tokens()...)
		factorLogins++
	})

	t.Run("sso+factor", func(t *testing.T) {
		p := newPage(t, alloc, "gina")
		rec.listen(t, p)
		p.do("sign in through the plugin",
			chromedp.Navigate(env.URL),
			chromedp.WaitVisible(button),
			chromedp.Click(button),
			chromedp.WaitVisible(chromedp.ID("tid-username")),
			chromedp.SendKeys(chromedp.ID("tid-username"), "mfa-gina"),
			chromedp.Click(chromedp.ID("tid-submit")))
		passFactor(p)
		p.signedIn(env, "mfa-gina")
		secrets = append(secrets, p.tokens()...)
		ssoLogins++
		factorLogins++
	})

	sent, shown, bodies := rec.snapshot()
	codeRE := regexp.MustCompile(`#/login/code/([A-Za-z0-9_-]+)`)
	var codes []string
	for _, u := range shown {
		if m := codeRE.FindStringSubmatch(u); m != nil {
			codes = append(codes, m[1])
		}
	}
	if len(codes) < ssoLogins {
		t.Fatalf("found %d one-time codes in the shown URLs, want one per SSO login (%d): %v", len(codes), ssoLogins, shown)
	}
	challenges := 0
	for _, b := range bodies {
		var body struct{ Secret, Challenge string }
		if json.Unmarshal([]byte(b), &body) == nil && body.Secret != "" {
			secrets = append(secrets, body.Secret)
			challenges++
		}
	}
	if challenges < factorLogins {
		t.Fatalf("found %d second-factor completions in the request bodies, want %d: %v", challenges, factorLogins, bodies)
	}
	log := logs.String()
	if !strings.Contains(log, "msg=login") || !strings.Contains(log, `msg="account created"`) {
		t.Fatalf("the captured server log misses the logins (is capture working?):\n%s", log)
	}
	for _, s := range append(append([]string(nil), secrets...), codes...) {
		for _, u := range sent {
			if strings.Contains(u, s) {
				t.Errorf("a secret (%.8s…) was sent to a server in the URL %s", s, u)
			}
		}
		if strings.Contains(log, s) {
			t.Errorf("a secret (%.8s…) is in the server log", s)
		}
	}
	for _, s := range secrets {
		for _, u := range shown {
			if strings.Contains(u, s) {
				t.Errorf("a token or challenge secret (%.8s…) was shown in the URL %s", s, u)
			}
		}
	}
	for _, c := range codes {
		for _, u := range shown {
			if i := strings.Index(u, c); i >= 0 && !strings.HasSuffix(u[:i], "#/login/code/") {
				t.Errorf("a one-time code is outside the URL fragment in %s", u)
			}
		}
	}
	if testing.Verbose() {
		t.Logf("sent:\n%s\nshown:\n%s", strings.Join(sent, "\n"), strings.Join(shown, "\n"))
	}
	t.Logf("checked %d sent URLs, %d shown URLs, %d secrets, %d codes and %d bytes of server log",
		len(sent), len(shown), len(secrets), len(codes), len(log))
}
