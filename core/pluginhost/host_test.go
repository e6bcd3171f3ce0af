package pluginhost_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// testLimits replaces the 250ms default deadline of the filter hooks in
// tests that are not about deadlines: a loaded CI machine must not turn a
// slow answer into a failure the test did not ask for.
const testLimits = "    limits: {timeouts: {MessageWillBePosted: 10s, MessageWillBeUpdated: 10s, UserWillLogIn: 10s}}\n"

func helloYAML(bin, extra string) string {
	return fmt.Sprintf(`plugins:
  - id: hello
    command: [%q]
    grants: [commands]
    config: {word: darn}
%s%s`, bin, testLimits, extra)
}

// Done-when 1: the example plugin, enabled by plugins.yaml, filters words and
// answers /hello through a real WebSocket client.
func TestHelloPlugin(t *testing.T) {
	hello, _ := bins(t)
	e := start(t, helloYAML(hello, ""))

	ack, err := send(e.bc, e.room, "/hello")
	if err != nil || ack.Type != protocol.TypeAck || ack.Text == nil || *ack.Text != "Hello, world!" || ack.Seq != 0 {
		t.Fatalf("/hello: ack %+v err %v; want an ephemeral ack with text", ack, err)
	}
	ack, err = send(e.bc, e.room, "/hello Unhidra")
	if err != nil || *ack.Text != "Hello, Unhidra!" {
		t.Fatalf("/hello Unhidra: %+v %v", ack, err)
	}
	_, err = send(e.bc, e.room, "well DARN it")
	if code(err) != protocol.CodeForbidden || !strings.Contains(err.Error(), `"darn" is not allowed`) {
		t.Fatalf("filtered word: err %v; want forbidden with the plugin's reason", err)
	}
	ack, err = send(e.bc, e.room, "a fine message")
	if err != nil || ack.Seq == 0 {
		t.Fatalf("plain message: %+v %v", ack, err)
	}
	// The admin's session sees the plain message and never the refused one.
	got := servertest.Next(t, e.ac, 10*time.Second, protocol.TypeMessage)
	if *got.Text != "a fine message" {
		t.Fatalf("delivered %q", *got.Text)
	}
	ack, err = send(e.bc, e.room, "//hello is literal")
	if err != nil || ack.Seq == 0 {
		t.Fatalf("//hello: %+v %v", ack, err)
	}
	if got := servertest.Next(t, e.ac, 10*time.Second, protocol.TypeMessage); *got.Text != "/hello is literal" {
		t.Fatalf("//hello delivered as %q", *got.Text)
	}
	if _, err := send(e.bc, e.room, "/nope"); code(err) != protocol.CodeNotFound {
		t.Fatalf("unknown command: %v", err)
	}
	st := e.status(t, "hello")
	if st.State != "running" || st.PID == 0 || strings.Join(st.Hooks, ",") != "OnActivate,MessageWillBePosted,ExecuteCommand" ||
		strings.Join(st.Commands, ",") != "hello" {
		t.Fatalf("status %+v", st)
	}
	if hs := hookStat(st, "MessageWillBePosted"); hs.Calls < 3 || hs.Errors != 0 || hs.Breaker != "closed" || hs.AvgMs <= 0 {
		t.Fatalf("hook stats %+v", hs)
	}
	if string(st.Config) != `{"word":"darn"}` {
		t.Fatalf("effective config %s", st.Config)
	}
	// Per plugin-hook metrics are on /metrics.
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`unhidra_plugin_hook_calls_total{hook="MessageWillBePosted",plugin="hello"}`,
		`unhidra_plugin_hook_seconds_bucket{hook="ExecuteCommand",plugin="hello"`, `unhidra_plugin_up{plugin="hello"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Only a superadmin sees the admin API.
	var out any
	if err := e.bob.API.Do(context.Background(), "GET", "/v1/admin/plugins", nil, &out); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("member reading admin API: %v", err)
	}
	alive(t, e.ac, e.bc)
}

// Done-when 2: SIGKILL of the plugin while clients send. No session drops;
// fail-open keeps acking, fail-closed refuses with a clear error; the plugin
// comes back and filters again from the moment it is back, however many calls
// the dead process failed before its exit was noticed.
func TestKillPluginUnderLoad(t *testing.T) {
	hello, _ := bins(t)
	for _, policy := range []string{"open", "closed"} {
		t.Run(policy, func(t *testing.T) {
			// A single failure opens the breaker for the rest of the test: a
			// breaker left open by the dead process's failures would bypass
			// the new one (nothing filtered under open, all refused under
			// closed), whatever the scheduling.
			e := start(t, helloYAML(hello, "    failure: {MessageWillBePosted: "+policy+"}\n    breaker: {failures: 1, cooldown: 1h}\n"))
			first := e.status(t, "hello")
			conns := []*client.Conn{e.ac, e.bc}
			for i := 0; i < 2; i++ {
				u := e.NewUser(t, fmt.Sprintf("sender%d", i))
				if err := u.API.JoinRoom(context.Background(), e.room); err != nil {
					t.Fatal(err)
				}
				conns = append(conns, e.Dial(t, u))
			}
			var acked, refused atomic.Int64
			var bad atomic.Value
			var isBack atomic.Bool // the new process was seen running
			stop := make(chan struct{})
			var wg sync.WaitGroup
			halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
			t.Cleanup(halt) // a failed test stops its senders before the server
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						back := isBack.Load()
						_, err := send(c, e.room, fmt.Sprintf("msg %d from %d", n, i))
						switch {
						case err == nil:
							acked.Add(1)
						case !back && code(err) == protocol.CodeUnavailable && policy == "closed" && strings.Contains(err.Error(), "plugin hello is unavailable"):
							refused.Add(1)
						default:
							bad.Store(fmt.Sprintf("%v (sent after the plugin was back: %v)", err, back))
							return
						}
					}
				}()
			}
			waitFor(t, "some acks before the kill", func() bool { return acked.Load() > 20 })
			killed := time.Now()
			if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			var back time.Duration
			waitFor(t, "the plugin to restart", func() bool {
				s := e.Server.Plugins().Status().Plugins[0]
				if s.State == "running" && s.PID != first.PID && s.PID != 0 {
					back = time.Since(killed)
					return true
				}
				return false
			})
			isBack.Store(true)
			// The filter works on the new process at once.
			if _, err := send(e.bc, e.room, "darn"); code(err) != protocol.CodeForbidden {
				t.Fatalf("filter right after the restart: %v", err)
			}
			before := acked.Load()
			waitFor(t, "sends after the restart", func() bool { return acked.Load() > before+20 || bad.Load() != nil })
			halt()
			if b := bad.Load(); b != nil {
				t.Fatalf("a send failed in a way policy %s does not allow: %v", policy, b)
			}
			alive(t, conns...)
			st := e.status(t, "hello")
			t.Logf("policy %s: plugin back %v after SIGKILL (restarts %d); %d sends acked, %d refused while it was down",
				policy, back.Round(time.Millisecond), st.Restarts, acked.Load(), refused.Load())
			if st.Restarts != 1 || st.RecentCrashes != 1 {
				t.Fatalf("status after one crash: %+v", st)
			}
			if hs := hookStat(st, "MessageWillBePosted"); hs.Breaker != "closed" {
				t.Fatalf("breaker after the restart: %+v", hs)
			}
		})
	}
}

// Done-when 3: a hook sleeping past its deadline costs the sender at most
// the deadline, and the breaker opens after repeated timeouts.
func TestHookDeadlineAndBreaker(t *testing.T) {
	_, tp := bins(t)
	e := start(t, fmt.Sprintf(`plugins:
  - id: sleepy
    command: [%q, sleepy]
    limits:
      timeouts: {MessageWillBePosted: 150ms}
    breaker: {failures: 3, cooldown: 1h}
`, tp))
	for i := 0; i < 3; i++ {
		begin := time.Now()
		ack, err := send(e.bc, e.room, fmt.Sprintf("please sleep %d", i))
		took := time.Since(begin)
		if err != nil || ack.Seq == 0 {
			t.Fatalf("send %d under fail-open: %+v %v", i, ack, err)
		}
		// The plugin sleeps 5s; anything well below that is the deadline at work.
		if took >= 5*time.Second {
			t.Fatalf("send %d waited for the plugin (%v), not for the deadline", i, took)
		}
		t.Logf("send %d with a sleeping hook took %v (deadline 150ms)", i, took.Round(time.Millisecond))
	}
	st := e.status(t, "sleepy")
	hs := hookStat(st, "MessageWillBePosted")
	if hs.Timeouts != 3 || hs.Breaker != "open" {
		t.Fatalf("after 3 timeouts: %+v", hs)
	}
	// With the breaker open, the plugin is bypassed: the message is stored
	// unmodified (the plugin would have appended " [seen]").
	ack, err := send(e.bc, e.room, "quick one")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := e.bob.API.History(context.Background(), e.room, ack.Seq-1, 0, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Text != "quick one" {
		t.Fatalf("bypassed message stored as %+v (%v)", msgs, err)
	}
	if hs := hookStat(e.status(t, "sleepy"), "MessageWillBePosted"); hs.Timeouts != 3 || hs.Errors != 4 {
		t.Fatalf("bypassed call should count as an error, not a timeout: %+v", hs)
	}
	alive(t, e.ac, e.bc)
}

// Done-when 4: reload enables, reconfigures, rejects a bad file and disables
// without dropping a session.
func TestReloadKeepsSessions(t *testing.T) {
	hello, _ := bins(t)
	e := start(t, "plugins: []\n")
	if _, err := send(e.bc, e.room, "/hello"); code(err) != protocol.CodeNotFound {
		t.Fatalf("/hello without the plugin: %v", err)
	}
	// Enable.
	e.write(t, helloYAML(hello, ""))
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	if ack, err := send(e.bc, e.room, "/hello"); err != nil || *ack.Text != "Hello, world!" {
		t.Fatalf("after enable: %v", err)
	}
	pid := e.status(t, "hello").PID
	// Reconfigure: hello has no OnConfigurationChange, so it is swapped.
	e.write(t, strings.Replace(helloYAML(hello, ""), "word: darn", "word: heck", 1))
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	if _, err := send(e.bc, e.room, "oh heck"); code(err) != protocol.CodeForbidden {
		t.Fatalf("new word not filtered: %v", err)
	}
	if _, err := send(e.bc, e.room, "darn is fine now"); err != nil {
		t.Fatalf("old word still filtered: %v", err)
	}
	if p := e.status(t, "hello").PID; p == pid {
		t.Fatalf("reconfigure without OnConfigurationChange should swap the process")
	}
	// A bad file is refused whole, with file and line; nothing changes.
	e.write(t, helloYAML(hello, "    enabeld: false\n"))
	err := e.reload(t)
	if err == nil || !strings.Contains(err.Error(), "plugins.yaml:7") || !strings.Contains(err.Error(), `unknown key "enabeld"`) {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := send(e.bc, e.room, "oh heck"); code(err) != protocol.CodeForbidden {
		t.Fatalf("bad reload changed the running set: %v", err)
	}
	// Disable.
	e.write(t, helloYAML(hello, "    enabled: false\n"))
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	if _, err := send(e.bc, e.room, "oh heck"); err != nil {
		t.Fatalf("disabled plugin still filters: %v", err)
	}
	if _, err := send(e.bc, e.room, "/hello"); code(err) != protocol.CodeNotFound {
		t.Fatalf("disabled plugin still answers: %v", err)
	}
	if st := e.status(t, "hello"); st.State != "disabled" {
		t.Fatalf("status %+v", st)
	}
	// SIGHUP calls the same reload.
	e.write(t, helloYAML(hello, ""))
	if err := e.Server.ReloadPlugins(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := send(e.bc, e.room, "/hello"); err != nil {
		t.Fatalf("re-enabled: %v", err)
	}
	alive(t, e.ac, e.bc)
}

// Faults: plugins that exit at start, speak the wrong handshake or answer
// garbage. The core serves every session; the policy applies; crash loops
// end disabled.
func TestMisbehavingPlugins(t *testing.T) {
	_, tp := bins(t)
	e := start(t, fmt.Sprintf(`plugins:
  - id: exits
    command: [%[1]q, exit]
    restart: {max_crashes: 3, window: 1m}
  - id: handshake
    command: [%[1]q, handshake]
    restart: {max_crashes: 2, window: 1m}
  - id: garbage
    command: [%[1]q, garbage]
`, tp)+testLimits)
	for _, id := range []string{"exits", "handshake"} {
		waitFor(t, id+" to be disabled", func() bool {
			return e.Server.Plugins().Status().Plugins[0].State != "" && e.status(t, id).State == "crashed-disabled"
		})
		if st := e.status(t, id); st.LastError == "" {
			t.Fatalf("%s: no error recorded: %+v", id, st)
		}
	}
	// garbage answers with an unknown action: fail-open stores the message.
	ack, err := send(e.bc, e.room, "hello there")
	if err != nil || ack.Seq == 0 {
		t.Fatalf("garbage verdict under fail-open: %+v %v", ack, err)
	}
	if _, err := send(e.bc, e.room, "please modify"); err != nil {
		t.Fatalf("non-UTF-8 modification under fail-open: %v", err)
	}
	msgs, _ := e.bob.API.History(context.Background(), e.room, 0, 0, 10)
	if len(msgs) != 2 || msgs[1].Text != "please modify" {
		t.Fatalf("stored %+v", msgs)
	}
	if hs := hookStat(e.status(t, "garbage"), "MessageWillBePosted"); hs.Errors != 2 {
		t.Fatalf("garbage answers not counted: %+v", hs)
	}
	// A reload gives a crash-disabled plugin a fresh start (here it fails
	// again, so it is disabled again, after a new round of attempts).
	before := e.status(t, "exits").Starts
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "exits to be retried and disabled again", func() bool {
		st := e.status(t, "exits")
		return st.State == "crashed-disabled" && st.Starts == before+3
	})
	// Fail-closed turns the same garbage into a clear refusal.
	e.write(t, fmt.Sprintf("plugins:\n  - id: garbage\n    command: [%q, garbage]\n    failure: {MessageWillBePosted: closed}\n", tp)+testLimits)
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	if _, err := send(e.bc, e.room, "hello again"); code(err) != protocol.CodeUnavailable {
		t.Fatalf("garbage under fail-closed: %v", err)
	}
	alive(t, e.ac, e.bc)
}

// Host API: grants are enforced on every call; KV works end to end (on
// SQLite and Postgres); HTTP streams; config changes reach
// OnConfigurationChange without a restart.
func TestHostAPIAndHTTP(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testHostAPIAndHTTP(t, b.DSN(t)) })
	}
}

func testHostAPIAndHTTP(t *testing.T, dsn string) {
	_, tp := bins(t)
	yaml := func(grants, greeting string) string {
		return fmt.Sprintf("plugins:\n  - id: probe\n    command: [%q, probe]\n    grants: [%s]\n    config: {greeting: %s}\n", tp, grants, greeting) + testLimits
	}
	e := startOn(t, dsn, yaml("commands, kv", "hi"))
	ack, err := send(e.bc, e.room, "/kv")
	want := "get=one/true cas-wrong=false cas-right=true cas-absent=true cas-absent-again=false list=a/1:uno,a/2:two expired-found=false deleted-found=false"
	if err != nil || *ack.Text != want {
		t.Fatalf("/kv: %v\n got %q\nwant %q", err, deref(ack.Text), want)
	}
	ack, err = send(e.bc, e.room, "/post x")
	if err != nil || !strings.Contains(*ack.Text, "permission denied") || !strings.Contains(*ack.Text, `"messages.post"`) {
		t.Fatalf("/post without grant: %v %q", err, deref(ack.Text))
	}
	pid := e.status(t, "probe").PID
	e.write(t, yaml("commands, kv, messages.post", "hey"))
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	if ack, err := send(e.bc, e.room, "/cfg"); err != nil || *ack.Text != "hey" {
		t.Fatalf("/cfg after reconfigure: %v %q", err, deref(ack.Text))
	}
	if e.status(t, "probe").PID != pid {
		t.Fatal("a plugin with OnConfigurationChange was restarted to reconfigure")
	}
	ack, err = send(e.bc, e.room, "/post x")
	if err != nil || *ack.Text != "posted" {
		t.Fatalf("/post with grant: %v %q", err, deref(ack.Text))
	}
	got := servertest.NextWhere(t, e.ac, 10*time.Second, "the bot's post", func(f protocol.Frame) bool {
		return f.Type == protocol.TypeMessage && f.Text != nil && *f.Text == "posted by probe: x"
	})
	if got.From == "" || got.From == e.bob.ID {
		t.Fatalf("bot post from %q", got.From)
	}

	// HTTP under /plugins/probe/, streamed.
	body := strings.Repeat("z", 100<<10)
	resp, err := http.Post(e.URL+"/plugins/probe/hook/x?a=1", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 || resp.Header.Get("X-Probe") != "yes" || string(b) != "path=/hook/x query=a=1\nbody=102400\ndone\n" {
		t.Fatalf("plugin HTTP: %d %v %q", resp.StatusCode, resp.Header, b)
	}
	if resp, err := http.Get(e.URL + "/plugins/nobody/x"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("unknown plugin HTTP: %v %v", resp, err)
	}
	alive(t, e.ac, e.bc)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// Every other hook reaches the plugin: edits can be modified or refused,
// logins refused, and notifications arrive in order.
func TestAllHooks(t *testing.T) {
	_, tp := bins(t)
	t.Setenv("UNHIDRA_DATABASE_URL_TEST_SECRET", "postgres://u:secret@db/x")
	e := start(t, fmt.Sprintf("plugins:\n  - id: probe\n    command: [%q, probe]\n    grants: [commands]\n", tp)+testLimits)
	ctx := context.Background()
	// The server's environment does not leak into plugins.
	for arg, want := range map[string]string{"UNHIDRA_DATABASE_URL_TEST_SECRET": `""`, "UNHIDRA_PLUGIN_ID": `"probe"`} {
		if a, err := send(e.bc, e.room, "/env "+arg); err != nil || *a.Text != arg+"="+want {
			t.Fatalf("/env %s: %v %q", arg, err, deref(a.Text))
		}
	}
	ack, err := send(e.bc, e.room, "original")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.bc.Edit(ctx, e.room, ack.ID, "forbidden edit"); code(err) != protocol.CodeForbidden {
		t.Fatalf("refused edit: %v", err)
	}
	if _, err := e.bc.Edit(ctx, e.room, ack.ID, "new text"); err != nil {
		t.Fatal(err)
	}
	got := servertest.Next(t, e.ac, 10*time.Second, protocol.TypeEdited)
	if *got.Text != "new text (checked)" {
		t.Fatalf("edit stored as %q", *got.Text)
	}
	if _, err := e.bc.Delete(ctx, e.room, ack.ID); err != nil {
		t.Fatal(err)
	}
	carol := e.NewUser(t, "carol")
	if err := carol.API.JoinRoom(ctx, e.room); err != nil {
		t.Fatal(err)
	}
	cc := e.Dial(t, carol)
	if _, err := cc.Leave(ctx, e.room); err != nil {
		t.Fatal(err)
	}
	cc.Close()
	mal := &client.API{Base: e.URL}
	if _, err := mal.Register(ctx, "mallory", "password-mallory", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := mal.Login(ctx, "mallory", "password-mallory"); err == nil || !strings.Contains(err.Error(), "mallory may not log in") {
		t.Fatalf("refused login: %v", err)
	}
	want := "posted:original updated:new text (checked) deleted login:carol joined connect left disconnect"
	waitFor(t, "all notifications", func() bool {
		a, err := send(e.bc, e.room, "/events")
		return err == nil && strings.HasSuffix(*a.Text, want)
	})
	alive(t, e.ac, e.bc)
}
