package pluginhost_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/client"
)

var (
	secOnce sync.Once
	secBin  string
	secErr  error
)

// secRecorder builds testdata/secevents (a process plugin that records the
// stream in a file) once per test run.
func secRecorder(t *testing.T) string {
	t.Helper()
	secOnce.Do(func() {
		if _, err := exec.LookPath("go"); err != nil {
			secErr = errors.New("the go tool is not on PATH")
			return
		}
		dir, err := os.MkdirTemp("", "unhidra-secevents-")
		if err != nil {
			secErr = err
			return
		}
		secBin = filepath.Join(dir, "secevents")
		if out, err := exec.Command("go", "build", "-o", secBin, "./testdata/secevents").CombinedOutput(); err != nil {
			secErr = fmt.Errorf("go build ./testdata/secevents: %v\n%s", err, out)
		}
	})
	if secErr != nil {
		if strings.Contains(secErr.Error(), "not on PATH") {
			servertest.SkipOrFail(t, "security event tests build a plugin: "+secErr.Error())
		}
		t.Fatal(secErr)
	}
	return secBin
}

// secServer starts a server whose failed logins are cheap (argon2 at its
// minimum, no lockout), so that tests can produce thousands of real
// login.failed events through the REST API.
func secServer(t *testing.T, dsn, yaml string, max int64) (*servertest.Env, string, servertest.User) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugins.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := servertest.Start(t, servertest.Options{DSN: dsn, Config: func(c *server.Config) {
		c.Plugins = path
		c.Argon2Time, c.Argon2Memory = 1, 64
		c.LockoutThreshold, c.LockoutIPThreshold = 1<<30, 1<<30
		if max > 0 {
			c.SecurityEventsMax = max
		}
	}})
	return e, path, e.NewUser(t, "admin")
}

// failLogins makes n wrong-password logins for user from `workers`
// goroutines. Before the login numbered pause (if > 0) it waits for gate.
func failLogins(t *testing.T, e *servertest.Env, user string, n, workers int, pause int64, gate <-chan struct{}) error {
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := e.API()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if i == pause {
					<-gate
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := a.Login(ctx, user, "not-the-password")
				cancel()
				var ae *client.APIError
				if !errors.As(err, &ae) || ae.Status != 401 {
					errs <- fmt.Errorf("login %d: %v; want 401", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// recorded parses the recorder's file: ids in file order, their types, and
// the lines that are neither (ERR, GAP, DUPS).
func recorded(t *testing.T, path string) (ids []int64, types map[int64]string, other []string) {
	t.Helper()
	types = map[int64]string{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, types, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 2 {
			other = append(other, sc.Text())
			continue
		}
		id, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			other = append(other, sc.Text())
			continue
		}
		ids = append(ids, id)
		types[id] = fs[1]
	}
	return ids, types, other
}

func kvUint(t *testing.T, st *store.Store, plugin, key string) (uint64, bool) {
	t.Helper()
	v, err := st.KVGet(context.Background(), plugin, key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		t.Fatalf("%s kv %s = %q", plugin, key, v)
	}
	return n, true
}

// waitLong polls cond like waitFor, with a deadline for work that takes
// minutes on a loaded machine (building WASM modules, 10,000 logins).
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Done-when: a plugin reading security events is killed with SIGKILL while
// 10,000 events are produced (real failed logins through REST); after its
// restart it has every event exactly once, by id, and in order — the ids
// 1..N the outbox assigned, the same events the admin API lists. A WASM
// module with the grant reads the same stream; a process plugin and a module
// without security.read receive nothing. On SQLite and Postgres.
func TestSecurityEventsSurviveSIGKILL(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testSurviveSIGKILL(t, b.DSN(t)) })
	}
}

func testSurviveSIGKILL(t *testing.T, dsn string) {
	bin := secRecorder(t)
	dir := t.TempDir()
	out, outNo := filepath.Join(dir, "audit.log"), filepath.Join(dir, "nogrant.log")
	src := wasmSrc(t, "core/pluginhost/wasmhost/testdata/secevents")
	e, _, admin := secServer(t, dsn, fmt.Sprintf(`plugins:
  - id: audit
    command: [%[1]s]
    grants: [security.read]
    config: {out: %[2]q, hold_at: 1000}
  - id: nogrant
    command: [%[1]s]
    config: {out: %[3]q}
  - id: wasmaudit
    kind: wasm
    wasm: %[4]s/a.wasm
    source: %[5]s
    grants: [kv, security.read]
  - id: wasmnogrant
    kind: wasm
    wasm: %[4]s/b.wasm
    source: %[5]s
    grants: [kv]
`, bin, out, outNo, dir, src), 0)
	st := e.Server.Store()
	if _, err := e.API().Register(context.Background(), "target", "password-target", ""); err != nil {
		t.Fatal(err)
	}
	ps := func() map[string]pluginStatus { return statuses(t, admin) }
	before := ps()["audit"]
	if before.State != "running" || before.PID == 0 {
		t.Fatalf("audit plugin %+v; want running with a pid", before)
	}

	const n = 10_000
	gate := make(chan struct{})
	produced := make(chan error, 1)
	go func() { produced <- failLogins(t, e, "target", n, 8, n/2, gate) }()

	// Kill it while logins go on (the producer waits at the halfway mark
	// until the kill), at a moment when it has recorded a batch it has not
	// acknowledged: it holds the batch that reaches id 1,000.
	waitLong(t, "the plugin to hold an unacknowledged batch", func() bool {
		_, err := os.Stat(out + ".held")
		return err == nil
	})
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %d: %v", before.PID, err)
	}
	atKill, _, _ := recorded(t, out)
	close(gate)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Server.Events().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, last, err := e.Server.Events().Bounds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitLong(t, fmt.Sprintf("the restarted plugin to record up to id %d", last), func() bool {
		ids, _, _ := recorded(t, out)
		return len(ids) > 0 && ids[len(ids)-1] >= last
	})
	after := ps()["audit"]
	if after.PID == before.PID || after.Restarts < 1 {
		t.Fatalf("audit plugin after SIGKILL: %+v; want a restarted process", after)
	}

	ids, types, other := recorded(t, out)
	t.Logf("%d events recorded; %d before the SIGKILL; notes %v", len(ids), len(atKill), other)
	dups := 0
	for _, l := range other {
		if !strings.HasPrefix(l, "DUPS ") {
			t.Fatalf("recorder noted %q: events out of order or a gap", l)
		}
		dups++
	}
	if dups == 0 {
		t.Fatal("the batch held at the SIGKILL was not delivered again (at least once) or not deduplicated")
	}
	failed := 0
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("record %d is id %d: want every id 1..%d once, in order", i, id, len(ids))
		}
		if types[id] == string(secevent.LoginFailed) {
			failed++
		}
	}
	if failed != n {
		t.Fatalf("%d login.failed events recorded, want %d", failed, n)
	}
	// The same events, with the same types, as the outbox holds.
	for after := int64(0); after < int64(len(ids)); {
		var page struct {
			Events []secevent.Record `json:"events"`
		}
		if err := admin.API.Do(ctx, "GET", fmt.Sprintf("/v1/admin/security-events?after=%d&limit=1000", after), nil, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			t.Fatalf("admin API has nothing after id %d, the plugin recorded %d", after, len(ids))
		}
		for _, ev := range page.Events {
			if ev.ID <= int64(len(ids)) && types[ev.ID] != ev.Type {
				t.Fatalf("event %d: admin API says %s, plugin recorded %s", ev.ID, ev.Type, types[ev.ID])
			}
			after = ev.ID
		}
	}

	// The crash and the restart are in the stream themselves.
	crashed, started := false, false
	for _, id := range ids {
		if id > int64(len(atKill)) {
			crashed = crashed || types[id] == string(secevent.PluginCrashed)
			started = started || (crashed && types[id] == string(secevent.PluginStarted))
		}
	}
	if !crashed || !started {
		t.Fatalf("after the SIGKILL: plugin.crashed %v, then plugin.started %v; want both", crashed, started)
	}

	// The WASM module with the grant has the stream too, exactly once each.
	waitLong(t, "the WASM module to read up to id "+strconv.FormatInt(last, 10), func() bool {
		l, _ := kvUint(t, st, "wasmaudit", "last")
		return l >= uint64(last)
	})
	l, _ := kvUint(t, st, "wasmaudit", "last")
	if cnt, _ := kvUint(t, st, "wasmaudit", "n"); cnt != l {
		t.Fatalf("WASM module counted %d distinct events up to id %d", cnt, l)
	}
	if v, err := st.KVGet(ctx, "wasmaudit", "err"); err == nil {
		t.Fatalf("WASM module saw events out of order: %s", v)
	}
	// Without security.read: nothing, ever (the hook is implemented).
	if ids, _, _ := recorded(t, outNo); len(ids) > 0 {
		t.Fatalf("plugin without the grant recorded %d events", len(ids))
	}
	if _, ok := kvUint(t, st, "wasmnogrant", "last"); ok {
		t.Fatal("WASM module without the grant received security events")
	}
	for _, id := range []string{"nogrant", "wasmnogrant"} {
		p := ps()[id]
		if !slices.Contains(p.Hooks, "OnSecurityEvents") {
			t.Fatalf("%s does not report OnSecurityEvents (%v): the refusal would prove nothing", id, p.Hooks)
		}
		if c := p.calls("OnSecurityEvents"); c != 0 {
			t.Fatalf("%s: %d OnSecurityEvents calls without the grant", id, c)
		}
	}
}

// A plugin whose cursor fell behind the bounded outbox gets gap: true on
// its next batch, then every retained event in order.
func TestSecurityEventsGapAfterPruning(t *testing.T) {
	bin := secRecorder(t)
	out := filepath.Join(t.TempDir(), "audit.log")
	e, _, admin := secServer(t, "", fmt.Sprintf(`plugins:
  - id: audit
    command: [%s]
    grants: [security.read]
    config: {out: %q}
`, bin, out), 50)
	ctx := context.Background()
	if _, err := e.API().Register(ctx, "target", "password-target", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.Server.Events().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, first, _ := e.Server.Events().Bounds(ctx)
	waitLong(t, "the plugin to catch up", func() bool {
		ids, _, _ := recorded(t, out)
		return len(ids) > 0 && ids[len(ids)-1] >= first
	})
	if err := admin.API.Do(ctx, "POST", "/v1/admin/plugins/audit/disable", nil, nil); err != nil {
		t.Fatal(err)
	}
	seen, _, _ := recorded(t, out)
	cursor := seen[len(seen)-1]
	if err := e.Server.Events().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var page struct {
		Events []secevent.Record `json:"events"`
	}
	if err := admin.API.Do(ctx, "GET", "/v1/admin/security-events?type=plugin.disabled", nil, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Actor != admin.ID || page.Events[0].Target != "audit" || page.Events[0].Outcome != "success" {
		t.Fatalf("plugin.disabled events %+v; want one by the admin, of audit", page.Events)
	}
	if err := failLogins(t, e, "target", 200, 4, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Server.Events().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the outbox to prune past the disabled plugin's cursor", func() bool {
		oldest, last, err := e.Server.Events().Bounds(ctx)
		return err == nil && oldest > cursor+1 && last-oldest+1 <= 51
	})
	if err := admin.API.Do(ctx, "POST", "/v1/admin/plugins/audit/enable", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Server.Events().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, last, _ := e.Server.Events().Bounds(ctx)
	waitLong(t, "the re-enabled plugin to read to the end", func() bool {
		ids, _, _ := recorded(t, out)
		return ids[len(ids)-1] >= last
	})
	ids, types, other := recorded(t, out)
	enabled := false
	for _, id := range ids {
		enabled = enabled || types[id] == string(secevent.PluginEnabled)
	}
	if !enabled {
		t.Fatal("the re-enabled plugin did not read its own plugin.enabled event")
	}
	var gaps []string
	for _, l := range other {
		if strings.HasPrefix(l, "GAP ") {
			gaps = append(gaps, l)
		} else if !strings.HasPrefix(l, "DUPS ") {
			t.Fatalf("recorder noted %q", l)
		}
	}
	if len(gaps) != 1 {
		t.Fatalf("gap notes %v; want exactly one after re-enabling", gaps)
	}
	resumed, _ := strconv.ParseInt(strings.TrimPrefix(gaps[0], "GAP "), 10, 64)
	if resumed <= cursor+1 {
		t.Fatalf("gap reported at id %d, but the cursor was %d", resumed, cursor)
	}
	for i := len(seen); i < len(ids); i++ {
		if want := resumed + int64(i-len(seen)); ids[i] != want {
			t.Fatalf("after the gap, record %d is id %d; want %d", i, ids[i], want)
		}
	}
}

type pluginStatus struct {
	ID        string   `json:"id"`
	State     string   `json:"state"`
	PID       int      `json:"pid"`
	Restarts  int64    `json:"restarts"`
	Hooks     []string `json:"hooks"`
	HookStats []struct {
		Hook  string `json:"hook"`
		Calls int64  `json:"calls"`
	} `json:"hook_stats"`
}

func (p pluginStatus) calls(hook string) int64 {
	for _, h := range p.HookStats {
		if h.Hook == hook {
			return h.Calls
		}
	}
	return 0
}

// statuses reads GET /v1/admin/plugins as an admin would.
func statuses(t *testing.T, admin servertest.User) map[string]pluginStatus {
	t.Helper()
	var ov struct {
		Plugins []pluginStatus `json:"plugins"`
	}
	if err := admin.API.Do(context.Background(), "GET", "/v1/admin/plugins", nil, &ov); err != nil {
		t.Fatal(err)
	}
	out := map[string]pluginStatus{}
	for _, p := range ov.Plugins {
		out[p.ID] = p
	}
	return out
}
