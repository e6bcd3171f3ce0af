package adminui_test

// Browser tests: Debian's Chromium, driven by chromedp, against a real server
// from core/servertest. They skip (or fail under UNHIDRA_TEST_REQUIRE_ALL=1)
// when /usr/bin/chromium is missing; .ci/run installs it.
//
// With UNHIDRA_UPDATE_SCREENSHOTS=1 they also write docs/img/*.png, the
// screenshots the README links to (`just screenshots`).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
)

const chromiumPath = "/usr/bin/chromium"

// wait bounds every single wait in these tests; generous, because the
// machine is shared, and never an assertion about speed.
const wait = 15 * time.Second

// startBrowser launches one headless Chromium for the test with a fresh
// profile and returns the context of its first tab.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		servertest.SkipOrFail(t, "browser tests need Debian's chromium at "+chromiumPath+" (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	// Start the browser with its first (blank) tab; pages get their own
	// browser contexts from it.
	root, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return root
}

// page is one tab in its own browser context (separate cookies and storage),
// so two pages are two independent users.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu         sync.Mutex
	exceptions []string
	ended      bool
}

func newPage(t *testing.T, alloc context.Context, name string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithNewBrowserContext())
	p := &page{t: t, name: name, ctx: ctx}
	t.Cleanup(func() {
		p.mu.Lock()
		p.ended = true
		p.mu.Unlock()
		cancel()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("%s: open tab: %v", name, err)
	}
	// Console errors and uncaught exceptions are logged; exceptions fail the test.
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			p.mu.Lock()
			if !p.ended {
				t.Logf("%s console %s: %s", name, m.Type, m.Text)
				if m.IsException() {
					p.exceptions = append(p.exceptions, m.Text)
				}
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.exceptions) > 0 {
			t.Errorf("%s: uncaught exceptions in the console: %v", name, p.exceptions)
		}
	})
	return p
}

// slow logs steps that took more than a second (with -v), to find where
// a slow run spends its time.
func (p *page) slow(what string, start time.Time) {
	if d := time.Since(start); d > time.Second && testing.Verbose() {
		p.t.Logf("%s: %s took %v", p.name, what, d.Round(time.Millisecond))
	}
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	defer p.slow(what, time.Now())
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.fail(what, err)
	}
}

func (p *page) fail(what string, err error) {
	p.t.Helper()
	// Show what the user would have seen.
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	seen, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		errors: document.getElementById('errors').innerText,
		room: document.getElementById('room-title').textContent,
		messages: [...document.querySelectorAll('#messages .msg .text')].map(e => e.textContent),
		connection: document.getElementById('conn-state').textContent,
		focus: ((e) => e && e !== document.body ? e.tagName + (e.id ? '#' + e.id : '') + ' ' + e.textContent.trim().slice(0, 40) : null)(document.activeElement)})`))
	p.t.Fatalf("%s: %s: %v\npage: %s", p.name, what, err, seen)
}

// until waits until the JavaScript expression is truthy.
func (p *page) until(what, expr string) {
	p.t.Helper()
	defer p.slow(what, time.Now())
	ctx, cancel := context.WithTimeout(p.ctx, wait+time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[any](expr, chromedp.WithPollingTimeout(wait))); err != nil {
		p.fail(what, err)
	}
}

func eval[T any](p *page, expr string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		p.fail("evaluate "+expr, err)
	}
	return v
}

func js(s string) string { b, _ := json.Marshal(s); return string(b) }

// signUp opens the console, creates an account and waits for the chat view.
func (p *page) signUp(url, username string) {
	p.t.Helper()
	p.do("sign up as "+username,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("auth-form")),
		chromedp.Click(chromedp.ID("auth-toggle")),
		chromedp.SendKeys(chromedp.ID("auth-username"), username),
		chromedp.SendKeys(chromedp.ID("auth-password"), "password-"+username),
		chromedp.Click(chromedp.ID("auth-submit")),
		chromedp.WaitVisible(chromedp.ID("view-chat")),
	)
	p.until("connected", `document.getElementById('conn-state').dataset.state === 'online'`)
}

// clear empties a text field.
func (p *page) clear(id string) {
	p.t.Helper()
	eval[bool](p, `(document.getElementById(`+js(id)+`).value = '', true)`)
}

// send types text into the composer and presses Enter.
func (p *page) send(text string) {
	p.t.Helper()
	p.do("send "+text, chromedp.SendKeys(chromedp.ID("composer-text"), text+"\r"))
}

// texts returns the texts of the messages shown in the room, in order
// (pending ones included).
func (p *page) texts() []string {
	return eval[[]string](p, `[...document.querySelectorAll('#messages .msg .text')].map(e => e.textContent)`)
}

func (p *page) waitText(text string) {
	p.t.Helper()
	p.until("message "+text+" shown",
		`[...document.querySelectorAll('#messages .msg:not(.pending) .text')].some(e => e.textContent === `+js(text)+`)`)
}

// msgSel is a CSS selector for the shown message with this exact text.
func (p *page) msgID(text string) string {
	p.t.Helper()
	p.waitText(text)
	return eval[string](p, `[...document.querySelectorAll('#messages .msg:not(.pending)')].find(li => li.querySelector('.text').textContent === `+js(text)+`).dataset.id`)
}

func (p *page) screenshot(name string) {
	p.t.Helper()
	if os.Getenv("UNHIDRA_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "docs", "img", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("wrote %s (%d bytes)", path, len(png))
}

// TestTwoBrowsersChat: two users, each in their own browser context, sign up
// and use every chat feature on each other: public room, join, messages,
// typing, presence, receipts, reactions, edits, threads and search.
func TestTwoBrowsersChat(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	alloc := startBrowser(t)
	alice := newPage(t, alloc, "alice")
	bob := newPage(t, alloc, "bob")

	alice.signUp(env.URL, "alice")
	if got := eval[string](alice, `document.getElementById('me-name').textContent`); got != "alice (admin)" {
		t.Errorf("the first account should be the admin; header says %q", got)
	}
	// A bad room (no name for a public room) shows the server's error code.
	alice.do("open new room dialog", chromedp.Click(chromedp.ID("new-room")), chromedp.WaitVisible(chromedp.ID("nr-name")))
	alice.do("submit room without name", chromedp.Click(chromedp.CSS(`#new-room-form button[type=submit]`)))
	alice.until("bad_request shown", `document.getElementById('new-room-error').textContent.startsWith('bad_request')`)
	alice.do("create public room",
		chromedp.SendKeys(chromedp.ID("nr-name"), "general"),
		chromedp.SendKeys(chromedp.ID("nr-topic"), "Say hello"),
		chromedp.Click(chromedp.CSS(`#new-room-form button[type=submit]`)),
	)
	alice.until("room open", `document.getElementById('room-title').textContent === 'general'`)

	bob.signUp(env.URL, "bob")
	bob.do("browse public rooms",
		chromedp.Click(chromedp.ID("browse-rooms")),
		chromedp.WaitVisible(chromedp.CSS(`#public-rooms button[aria-label="Join general"]`)),
		chromedp.Click(chromedp.CSS(`#public-rooms button[aria-label="Join general"]`)),
	)
	bob.until("room open", `document.getElementById('room-title').textContent === 'general'`)
	if focused := eval[string](bob, `document.activeElement.id`); focused != "composer-text" {
		t.Errorf("after opening a room the composer should have focus, not %q", focused)
	}

	alice.send("hello bob")
	bob.waitText("hello bob")
	bob.send("hi alice")
	alice.waitText("hi alice")

	// Typing and presence.
	bob.do("type", chromedp.SendKeys(chromedp.ID("composer-text"), "typing"))
	alice.until("typing shown", `document.getElementById('typing').textContent === 'bob is typing…'`)
	bob.clear("composer-text")
	alice.do("open members", chromedp.Click(chromedp.ID("toggle-members")))
	alice.until("bob online", `[...document.querySelectorAll('#panel-body .member')].some(li => li.textContent.includes('bob (online)'))`)
	alice.do("close members", chromedp.Click(chromedp.ID("panel-close")))

	// Read receipts: bob has seen alice's last message and vice versa.
	alice.until("seen by bob", `[...document.querySelectorAll('#messages .seen')].some(e => e.textContent === 'Seen by bob')`)

	// Reactions.
	hello := alice.msgID("hello bob")
	bob.do("react", chromedp.Click(chromedp.CSS(`#msg-`+hello+` button[aria-label="React with 👍"]`)))
	alice.until("reaction shown", `(document.querySelector('#msg-`+hello+` .chip') || {}).textContent === '👍 1'`)

	// Edit with the keyboard: ArrowUp in the empty composer edits your last message.
	alice.do("edit", chromedp.Click(chromedp.CSS(`#msg-`+hello+` button[data-focus="e:`+hello+`"]`)))
	alice.clear("edit-" + hello)
	alice.do("edit text", chromedp.SendKeys(chromedp.ID("edit-"+hello), "hello bob, edited\r"))
	bob.until("edit shown", `document.querySelector('#msg-`+hello+` .text').textContent === 'hello bob, edited' && !!document.querySelector('#msg-`+hello+` .edited')`)

	// Threads.
	bob.do("open thread", chromedp.Click(chromedp.CSS(`#msg-`+hello+` button[data-focus="t:`+hello+`"]`)), chromedp.WaitVisible(chromedp.ID("thread-text")))
	bob.do("reply", chromedp.SendKeys(chromedp.ID("thread-text"), "a reply in the thread\r"))
	alice.until("reply count", `(document.querySelector('#msg-`+hello+` .replies') || {}).textContent === '1 reply'`)
	alice.do("open thread", chromedp.Click(chromedp.CSS(`#msg-`+hello+` .replies`)))
	alice.until("reply shown in thread", `[...document.querySelectorAll('#panel-body .msg .text')].some(e => e.textContent === 'a reply in the thread')`)
	if got := alice.texts(); strings.Contains(strings.Join(got, "|"), "a reply in the thread") {
		t.Errorf("thread replies belong in the thread panel, not the room: %q", got)
	}
	alice.do("close thread", chromedp.Click(chromedp.ID("panel-close")))

	// Search.
	alice.do("search", chromedp.SendKeys(chromedp.ID("search-q"), "alice\r"))
	alice.until("search result", `[...document.querySelectorAll('#panel-body .result .text')].some(e => e.textContent === 'hi alice')`)

	// A direct room from bob to alice shows up for alice with bob's name.
	bob.do("new direct room",
		chromedp.Click(chromedp.ID("new-room")),
		chromedp.SetValue(chromedp.ID("nr-kind"), "direct"),
		chromedp.WaitVisible(chromedp.ID("nr-members")),
		chromedp.SendKeys(chromedp.ID("nr-members"), "alice"),
		chromedp.Click(chromedp.CSS(`#new-room-form button[type=submit]`)),
	)
	bob.until("direct room open", `document.getElementById('room-title').textContent === 'alice'`)
	bob.send("psst")
	alice.until("direct room listed with unread", `[...document.querySelectorAll('#room-list a')].some(a => a.textContent.includes('bob') && a.querySelector('.unread'))`)
	alice.do("open direct", chromedp.Click(chromedp.CSS(`#room-list a .unread`)))
	alice.waitText("psst")
	alice.send("we can talk here")
	bob.waitText("we can talk here")

	// Back to general for the screenshot, with the thread open.
	alice.do("back to general", chromedp.Click(chromedp.Search(`//a[contains(., 'general')]`)))
	alice.waitText("hello bob, edited")
	bob.do("bob back to general", chromedp.Click(chromedp.Search(`//a[contains(., 'general')]`)))
	bob.waitText("hi alice")
	bob.send("Shall we look at the plugins next?")
	alice.waitText("Shall we look at the plugins next?")
	alice.send("Yes: they are under Plugins, next to People.")
	bob.waitText("Yes: they are under Plugins, next to People.")
	alice.clear("search-q")
	alice.do("open thread", chromedp.Click(chromedp.CSS(`#msg-`+hello+` .replies`)), chromedp.WaitVisible(chromedp.ID("thread-text")))
	alice.screenshot("chat.png")

	// Admin views: only the admin sees them; People lists the users.
	if eval[bool](bob, `!document.querySelector('#nav a[data-view=people]').hidden`) {
		t.Error("bob is not an admin but sees the People link")
	}
	alice.do("open people", chromedp.Click(chromedp.CSS(`#nav a[data-view=people]`)), chromedp.WaitVisible(chromedp.ID("people-table")))
	alice.until("users listed", `[...document.querySelectorAll('#people-table tbody tr')].map(r => r.dataset.user).join() === 'alice,bob'`)
	alice.do("manage bob", chromedp.Click(chromedp.CSS(`button[aria-label="Manage bob"]`)))
	alice.until("bob's details", `document.getElementById('person-title').textContent.startsWith('bob')`)
}

// TestReloadKeepsEveryMessage: a page reload in the middle of a conversation
// loses nothing — messages that arrived while the page was gone are synced
// from the last seq, a message typed just before the reload is sent once,
// and nothing is shown twice. The same holds across a token refresh and a
// dropped connection.
func TestReloadKeepsEveryMessage(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	alloc := startBrowser(t)
	alice := newPage(t, alloc, "alice")
	alice.signUp(env.URL, "alice")

	// Bob is a Go client on the WebSocket.
	bob := env.NewUser(t, "bob")
	ctx := context.Background()
	room, err := bob.API.CreateRoom(ctx, "reload", "public", "alice")
	if err != nil {
		t.Fatal(err)
	}
	bc := env.Dial(t, bob)
	var want []string
	say := func(text string) {
		t.Helper()
		want = append(want, text)
		sctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if _, err := bc.Send(sctx, room.ID, text); err != nil {
			t.Fatalf("bob send %q: %v", text, err)
		}
	}
	for i := 1; i <= 5; i++ {
		say(fmt.Sprintf("before reload %d", i))
	}
	alice.until("room listed", `[...document.querySelectorAll('#room-list a')].some(a => a.textContent.includes('reload'))`)
	alice.do("open room", chromedp.Click(chromedp.Search(`//a[contains(., 'reload')]`)))
	alice.waitText("before reload 5")
	alice.send("alice before reload")
	want = append(want, "alice before reload")
	alice.waitText("alice before reload")

	// Type and press Enter, then reload at once: the send is either acked
	// before the page goes or waits in the outbox and is resent with its ref.
	alice.do("send and reload",
		chromedp.SendKeys(chromedp.ID("composer-text"), "sent as the page reloads\r"),
		chromedp.Navigate("about:blank"),
	)
	want = append(want, "sent as the page reloads")
	for i := 1; i <= 5; i++ { // while the page is away
		say(fmt.Sprintf("while away %d", i))
	}
	alice.do("come back", chromedp.Navigate(env.URL+"/#/chat/"+room.ID))
	alice.until("connected again", `document.getElementById('conn-state').dataset.state === 'online'`)
	alice.waitText("while away 5")
	alice.waitText("sent as the page reloads")

	// A send whose ack was lost with the page: the message is committed
	// (here through REST with the same ref) but the tab still holds it as
	// in flight. After the reload the console resends it with its ref, the
	// server answers with the first ack, and it shows once.
	token := eval[string](alice, `window.unhidra.api.token`)
	lost := &client.API{Base: env.URL, Token: token}
	if err := lost.Do(ctx, "POST", "/v1/rooms/"+room.ID+"/messages", map[string]string{"text": "ack lost on the way", "ref": "lost-ack-1"}, nil); err != nil {
		t.Fatal(err)
	}
	want = append(want, "ack lost on the way")
	eval[bool](alice, `(window.unhidra.chat.outbox.push({ref: 'lost-ack-1', room: `+js(room.ID)+`, text: 'ack lost on the way',
		thread: '', ts: Date.now(), state: 'sending', inflight: true}), window.unhidra.chat.flushPersist(), true)`)
	alice.do("reload with a lost ack", chromedp.Reload())
	alice.waitText("ack lost on the way")
	alice.until("outbox settled", `document.querySelectorAll('#messages .msg.pending').length === 0 && window.unhidra.chat.outbox.length === 0`)

	// A plain reload too, with more traffic after it.
	alice.do("reload", chromedp.Reload())
	say("after reload")
	alice.waitText("after reload")

	// The access token nears its end: the next request refreshes it first
	// (POST /v1/auth/refresh, which also rotates the refresh token).
	before := eval[string](alice, `sessionStorage.getItem('unhidra.auth')`)
	eval[bool](alice, `(window.unhidra.api.auth.expires_at = Date.now() + 5000, true)`)
	eval[string](alice, `window.unhidra.api.get('/v1/me').then(u => u.username)`, chromedp.EvalAwaitPromise)
	after := eval[string](alice, `sessionStorage.getItem('unhidra.auth')`)
	var a0, a1 struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	_ = json.Unmarshal([]byte(before), &a0)
	_ = json.Unmarshal([]byte(after), &a1)
	if a1.Access == "" || a1.Access == a0.Access || a1.Refresh == a0.Refresh {
		t.Fatalf("no refresh before expiry: tokens before %.40q… after %.40q…", before, after)
	}

	// The connection drops (with the fresh token for the next handshake):
	// the console reconnects and syncs what it missed.
	eval[bool](alice, `(window.unhidra.conn.ws.close(), true)`)
	alice.until("disconnected", `document.getElementById('conn-state').dataset.state !== 'online'`)
	say("while the socket was down")
	alice.until("connected again", `document.getElementById('conn-state').dataset.state === 'online'`)
	alice.waitText("while the socket was down")

	// Offline: a message typed now waits, marked as sending, and goes out
	// once when the connection is back.
	eval[bool](alice, `(window.unhidra.conn.stop(), true)`)
	alice.send("typed while offline")
	want = append(want, "typed while offline")
	alice.until("waiting", `[...document.querySelectorAll('#messages .msg.pending .status')].some(e => e.textContent === 'sending…')`)
	eval[bool](alice, `(window.unhidra.conn.start(), true)`)
	alice.waitText("typed while offline")
	alice.until("outbox empty", `window.unhidra.chat.outbox.length === 0 && !document.querySelector('#messages .msg.pending')`)

	got := alice.texts()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after reloads the room shows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The server holds each message exactly once (no duplicate from a resend).
	hist, err := bob.API.History(ctx, room.ID, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != len(want) {
		t.Fatalf("server has %d messages, want %d", len(hist), len(want))
	}
}

// TestOlderHistory: a room with more history than the first page shows the
// newest messages, and "Load older messages" brings the rest, in order. The
// room shows before its members have loaded (a sync or a receipt draws it);
// the members response is held until the reader has loaded older messages,
// as a busy machine does, and its arrival must not pull them back to the end
// (it did, and a click in between landed on another message).
func TestOlderHistory(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	bob := env.NewUser(t, "bob")
	ctx := context.Background()
	room, err := bob.API.CreateRoom(ctx, "long", "public")
	if err != nil {
		t.Fatal(err)
	}
	const n = 130
	for i := 1; i <= n; i++ {
		if _, err := bob.API.PostMessage(ctx, room.ID, fmt.Sprintf("m%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	alice := newPage(t, startBrowser(t), "alice")
	alice.signUp(env.URL, "alice")
	// A link to a public room she is not in offers to join it.
	alice.do("follow a link to the room", chromedp.Navigate(env.URL+"/#/chat/"+room.ID))
	eval[bool](alice, `(() => {
		const api = window.unhidra.chat.api, get = api.get.bind(api);
		const held = new Promise((resolve) => { window.releaseMembers = resolve; });
		api.get = (path) => path.endsWith('/members') ? held.then(() => get(path)) : get(path);
		return true;
	})()`)
	alice.do("join", chromedp.Click(chromedp.ID("join-room")))
	alice.waitText(fmt.Sprintf("m%03d", n))
	if got := len(alice.texts()); got != 100 {
		t.Fatalf("first page shows %d messages, want 100", got)
	}
	alice.do("load older", chromedp.Click(chromedp.CSS(`#messages .older button`)))
	alice.waitText("m001")
	got := alice.texts()
	if len(got) != n || got[0] != "m001" || got[n-1] != fmt.Sprintf("m%03d", n) {
		t.Fatalf("after loading older messages: %d shown, first %q last %q", len(got), got[0], got[len(got)-1])
	}
	alice.until("no more to load", `!document.querySelector('#messages .older')`)
	eval[bool](alice, `(window.releaseMembers(), true)`)
	alice.until("members loaded and drawn", `window.unhidra.chat.states.get(window.unhidra.chat.current).membersLoaded && !window.unhidra.chat.renderQueued`)
	alice.until("m031 (the first page's top) still in view", `(() => {
		const list = document.getElementById('messages').getBoundingClientRect();
		const li = [...document.querySelectorAll('#messages .msg')].find((e) => e.querySelector('.text').textContent === 'm031');
		const r = li.getBoundingClientRect();
		return r.bottom > list.top && r.top < list.bottom;
	})()`)
}

// TestKeyboardOnly: everything a newcomer does first works from the
// keyboard alone, with focus where the next key expects it: sign up, create
// a room in the dialog, send, edit the last message with ArrowUp, and close
// a dialog with Escape.
func TestKeyboardOnly(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	p := newPage(t, startBrowser(t), "carol")
	key := func(what, keys string) { p.t.Helper(); p.do(what, chromedp.KeyEvent(keys)) }
	focused := func(want string) {
		t.Helper()
		p.until("focus on "+want, `document.activeElement && document.activeElement.id === `+js(want))
	}
	p.do("open", chromedp.Navigate(env.URL), chromedp.WaitVisible(chromedp.ID("auth-form")))
	focused("auth-username")
	// "Create an account" is after the password field and the submit button.
	key("tab to password", kb.Tab)
	key("tab to submit", kb.Tab)
	key("tab to toggle", kb.Tab)
	focused("auth-toggle")
	key("switch to sign up", kb.Enter)
	focused("auth-username")
	key("type name", "carol")
	key("tab", kb.Tab)
	key("type password and submit", "password-carol"+kb.Enter)
	p.do("chat shown", chromedp.WaitVisible(chromedp.ID("view-chat")))
	focused("new-room") // no rooms yet: the next thing to do has focus

	key("open dialog", kb.Enter)
	focused("nr-name")
	key("close with Escape", kb.Escape)
	p.until("dialog closed", `!document.getElementById('dlg-new-room').open`)
	focused("new-room") // focus returns to what opened it
	key("open dialog again", kb.Enter)
	key("name and create", "keys"+kb.Enter)
	p.until("room open", `document.getElementById('room-title').textContent === 'keys'`)
	focused("composer-text")
	key("send", "typed with keys"+kb.Enter)
	p.waitText("typed with keys")
	focused("composer-text")
	key("edit last message", kb.ArrowUp)
	p.until("editor focused", `document.activeElement && document.activeElement.id.startsWith('edit-')`)
	eval[bool](p, `(document.activeElement.select(), true)`)
	key("replace and save", "fixed with keys"+kb.Enter)
	p.waitText("fixed with keys")
	focused("composer-text")
}

// TestEventsAppliedOnceInSeqOrder: an event can arrive both live and
// replayed by a sync, and live events can overtake the replay (protocol.md,
// "Sync"). The console applies each seq once, never lets an older edit or
// reaction undo a newer one, and only advances the seq it would sync from
// over events it has really applied. The frames are fed to the page's own
// handler in the order a racing sync could produce.
func TestEventsAppliedOnceInSeqOrder(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	p := newPage(t, startBrowser(t), "dave")
	p.signUp(env.URL, "dave")
	p.do("create room",
		chromedp.Click(chromedp.ID("new-room")),
		chromedp.SendKeys(chromedp.ID("nr-name"), "order"),
		chromedp.Click(chromedp.CSS(`#new-room-form button[type=submit]`)))
	p.until("room loaded", `document.getElementById('room-title').textContent === 'order' && window.unhidra.chat.states.get(window.unhidra.chat.current)?.loaded`)
	got := eval[string](p, `(() => {
		const c = window.unhidra.chat, room = c.current, st = c.states.get(room), me = c.me.id;
		const id = '00000000-0000-7000-8000-000000000001';
		const f = (seq, type, extra) => c.frame({type, room, id, seq, ts: Date.now(), ...extra});
		const out = [];
		const snap = () => { const m = st.msgs.get(id); out.push([st.lastSeq, m ? m.text : null, m ? JSON.stringify(m.reactions) : null].join('|')); };
		f(1, 'message', {from: me, text: 'v1'}); snap();                 // live
		f(3, 'edited', {from: me, text: 'v3'}); snap();                  // live, overtakes 2
		f(5, 'reaction', {user: me, emoji: '👍', on: true}); snap();     // live, overtakes 4
		f(1, 'message', {from: me, text: 'v1'}); snap();                 // replay: already applied
		f(2, 'edited', {from: me, text: 'v2'}); snap();                  // replay: older edit
		f(3, 'edited', {from: me, text: 'v3'}); snap();                  // replay: duplicate
		f(4, 'reaction', {user: me, emoji: '👍', on: false}); snap();    // replay: older reaction
		f(5, 'reaction', {user: me, emoji: '👍', on: true}); snap();     // replay: duplicate
		return out.join('\n');
	})()`)
	want := strings.Join([]string{
		`1|v1|{}`,
		`1|v3|{}`,
		`1|v3|{"👍":["` + "ME" + `"]}`,
		`1|v3|{"👍":["ME"]}`,
		`3|v3|{"👍":["ME"]}`,
		`3|v3|{"👍":["ME"]}`,
		`5|v3|{"👍":["ME"]}`,
		`5|v3|{"👍":["ME"]}`,
	}, "\n")
	me := eval[string](p, `window.unhidra.chat.me.id`)
	if got != strings.ReplaceAll(want, "ME", me) {
		t.Fatalf("state after each frame (lastSeq|text|reactions):\n%s\nwant\n%s", got, strings.ReplaceAll(want, "ME", me))
	}
}
