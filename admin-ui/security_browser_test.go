package adminui_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/unhidra/unhidra/core/servertest"
)

// TestSecurityConsole: an admin's Security page lists the security event
// stream newest first, filters it by type and actor and pages to older
// events; a member sees no Security page.
func TestSecurityConsole(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	alloc := startBrowser(t)
	alice := newPage(t, alloc, "alice")
	alice.signUp(env.URL, "alice") // the first account: superadmin
	// 60 failed logins for alice (four fail, the fifth locks the account,
	// the lockout refuses the rest): more than one page of events.
	api := env.API()
	for range 60 {
		if _, err := api.Login(context.Background(), "alice", "not-her-password"); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	if err := env.Server.Events().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	me := eval[string](alice, `window.unhidra.me.id`)

	alice.do("open security", chromedp.Click(chromedp.CSS(`#nav a[data-view=security]`)))
	rows := `[...document.querySelectorAll('#sec-table tbody tr[data-id]')]`
	alice.until("a page of events", rows+`.length === 50`)
	ids := eval[[]int](alice, rows+`.map(r => +r.dataset.id)`)
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("events not newest first: %v", ids)
		}
	}
	alice.do("older events", chromedp.Click(chromedp.ID("sec-older")))
	alice.until("the next page appended", rows+`.length > 50`)
	all := eval[[]int](alice, rows+`.map(r => +r.dataset.id)`)
	for i := 1; i < len(all); i++ {
		if all[i] >= all[i-1] {
			t.Fatalf("paging broke the order: %v", all)
		}
	}

	alice.until("types offered", `[...document.getElementById('sec-type').options].some(o => o.value === 'login.failed')`)
	eval[bool](alice, `(document.getElementById('sec-type').value = 'login.failed', true)`)
	alice.do("filter by type", chromedp.Click(chromedp.CSS(`#sec-filter button[type=submit]`)))
	alice.until("only failed logins", rows+`.length > 0 && `+rows+`.every(r => r.dataset.type === 'login.failed')`)
	if n := eval[int](alice, rows+`.length`); n != 4 {
		t.Fatalf("%d login.failed rows; want 4 (the fifth failure is login.locked)", n)
	}

	eval[bool](alice, `(document.getElementById('sec-type').value = '', true)`)
	alice.do("filter by actor", chromedp.SendKeys(chromedp.ID("sec-actor"), me), chromedp.Click(chromedp.CSS(`#sec-filter button[type=submit]`)))
	alice.until("alice's own events", rows+`.length > 0 && `+rows+`.every(r => r.children[4].textContent === `+js(me)+`)`)
	alice.until("her sign-up among them", rows+`.some(r => r.dataset.type === 'user.registered')`)

	bob := newPage(t, alloc, "bob")
	bob.signUp(env.URL, "bob")
	if !eval[bool](bob, `document.querySelector('#nav a[data-view=security]').hidden`) {
		t.Fatal("a member sees the Security page link")
	}
	bob.do("try the page anyway", chromedp.Navigate(env.URL+"/#/security"))
	bob.until("sent to chat instead", `!document.getElementById('view-chat').hidden && document.getElementById('view-security').hidden`)
}
