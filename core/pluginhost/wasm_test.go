package pluginhost_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// wasmSrc is the absolute path of a Go guest folder in this repo.
func wasmSrc(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wasmYAML enables the three first-party modules, each built from source on
// first start (as `go run` does) into the test's temp dir.
func wasmYAML(t *testing.T, dir string) string {
	return fmt.Sprintf(`plugins:
  - id: wordfilter
    kind: wasm
    wasm: %[1]s/wordfilter.wasm
    source: %[2]s
    config: {words: [darn, heck]}
    limits: {timeouts: {MessageWillBePosted: 10s}}
  - id: echobot
    kind: wasm
    wasm: %[1]s/echobot.wasm
    source: %[3]s
    grants: [commands, messages.post]
    limits: {timeouts: {ExecuteCommand: 10s}}
  - id: counter
    kind: wasm
    wasm: %[1]s/counter.wasm
    source: %[4]s
    grants: [commands, kv]
    limits: {timeouts: {ExecuteCommand: 10s}}
`, dir, wasmSrc(t, "wasm/wordfilter"), wasmSrc(t, "wasm/echobot"), wasmSrc(t, "wasm/counter"))
}

// Done-when 1: wordfilter rejects a banned word for a real WebSocket client;
// echobot answers its command (and a mention, through the post capability,
// without re-triggering itself); counter keeps per-room counts in the core KV.
func TestWASMModulesThroughWebSocket(t *testing.T) {
	e := start(t, wasmYAML(t, t.TempDir()))
	if _, err := send(e.bc, e.room, "well DARN it"); code(err) != protocol.CodeForbidden ||
		!strings.Contains(err.Error(), "message contains a blocked word") {
		t.Fatalf("banned word: %v; want forbidden with the module's reason", err)
	}
	if _, err := send(e.bc, e.room, "darning socks is fine"); err != nil {
		t.Fatalf("plain message: %v", err)
	}
	ack, err := send(e.bc, e.room, "/echo hi there")
	if err != nil || ack.Seq == 0 {
		t.Fatalf("/echo: %+v %v; want the in-room reply's ack", ack, err)
	}
	got := servertest.NextWhere(t, e.ac, 20*time.Second, "echo reply", func(f protocol.Frame) bool {
		return f.Type == protocol.TypeMessage && f.Text != nil && *f.Text == "hi there"
	})
	if got.From == e.bob.ID || got.From == e.admin.ID {
		t.Fatalf("echo reply came from %s, want the echobot's bot user", got.From)
	}
	bot := got.From
	if _, err := send(e.bc, e.room, "hey @echobot"); err != nil {
		t.Fatal(err)
	}
	reply := servertest.NextWhere(t, e.ac, 20*time.Second, "mention reply", func(f protocol.Frame) bool {
		return f.Type == protocol.TypeMessage && f.From == bot
	})
	if *reply.Text != "echo: hey @echobot" {
		t.Fatalf("mention reply = %q", *reply.Text)
	}
	// The bot's reply mentions @echobot itself; it must not answer itself.
	// A plugin gets its notifications one at a time in commit order, and
	// echobot posts from inside the hook: once a second mention is answered,
	// an answer to the first reply would already be in the history.
	if _, err := send(e.bc, e.room, "again @echobot"); err != nil {
		t.Fatal(err)
	}
	servertest.NextWhere(t, e.ac, 20*time.Second, "second mention reply", func(f protocol.Frame) bool {
		return f.Type == protocol.TypeMessage && f.From == bot && f.Text != nil && *f.Text == "echo: again @echobot"
	})
	hist, err := e.admin.API.History(t.Context(), e.room, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	echoes := 0
	for _, m := range hist {
		if strings.HasPrefix(m.Text, "echo: ") {
			echoes++
		}
	}
	if echoes != 2 {
		t.Fatalf("%d echo replies to 2 mentions; the bot re-triggered itself", echoes)
	}
	// counter: every committed message was counted through KV.
	waitFor(t, "counter to see every message", func() bool {
		a, err := send(e.bc, e.room, "/count")
		return err == nil && a.Text != nil && strings.Contains(*a.Text, fmt.Sprintf("seen %d messages", len(hist)))
	})
	st := e.status(t, "wordfilter")
	if st.Kind != "wasm" || st.State != "running" || st.WASM == nil || strings.Join(st.Hooks, ",") != "MessageWillBePosted" {
		t.Fatalf("status %+v", st)
	}
	if cs := e.status(t, "echobot").Commands; strings.Join(cs, ",") != "echo" {
		t.Fatalf("echobot commands %v", cs)
	}
	alive(t, e.ac, e.bc)
}

// Done-when 2: an infinite-loop module costs a sender at most its deadline,
// does not slow concurrent traffic in other rooms, and its breaker opens
// after repeated timeouts.
func TestWASMInfiniteLoopIsContained(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`plugins:
  - id: spinner
    kind: wasm
    wasm: %s/loop.wasm
    source: %s
    limits: {timeouts: {MessageWillBePosted: 100ms}}
    breaker: {failures: 3, cooldown: 1m}
`, dir, wasmSrc(t, "core/pluginhost/wasmhost/testdata/loop"))
	e := start(t, yaml)
	// Concurrent traffic: the admin keeps sending "ok" (the module allows it
	// at once) while bob's messages spin.
	var stop atomic.Bool
	var okSends, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := send(e.ac, e.room, "ok"); err != nil {
				failed.Add(1)
			} else {
				okSends.Add(1)
			}
		}
	}()
	for i := 0; i < 4; i++ {
		if i == 1 {
			// The breaker counts consecutive failures: stop the healthy
			// traffic so that the spins below are consecutive.
			stop.Store(true)
			wg.Wait()
		}
		start := time.Now()
		ack, err := send(e.bc, e.room, "spin forever")
		el := time.Since(start)
		// Fail-open: the message goes through once the deadline passes.
		if err != nil || ack.Seq == 0 {
			t.Fatalf("send %d: %+v %v; want acked after the deadline (fail-open)", i, ack, err)
		}
		t.Logf("send %d with a looping filter took %v (deadline 100ms)", i, el)
		if el > 5*time.Second {
			t.Fatalf("a 100ms deadline cost the sender %v", el)
		}
	}
	st := e.status(t, "spinner")
	if hs := hookStat(st, "MessageWillBePosted"); hs.Timeouts < 3 || hs.Breaker != "open" {
		t.Fatalf("hook stats %+v; want ≥3 timeouts and an open breaker", hs)
	}
	// The module counted the same deadlines. Whether each one discarded an
	// instance depends on whether it came while the loop ran or while an
	// instance was still starting (a loaded machine); wasmhost's
	// TestFaultsAreContained pins discarding down.
	if st.State != "running" || st.WASM == nil || st.WASM.Timeouts < 3 {
		t.Fatalf("status %+v, wasm %+v; want the module running with ≥3 timeouts", st, st.WASM)
	}
	// With the breaker open the module is bypassed: no more deadline cost.
	start := time.Now()
	if _, err := send(e.bc, e.room, "spin again"); err != nil {
		t.Fatal(err)
	}
	t.Logf("send with the breaker open took %v", time.Since(start))
	if failed.Load() > 0 || okSends.Load() == 0 {
		t.Fatalf("concurrent traffic: %d ok, %d failed", okSends.Load(), failed.Load())
	}
	alive(t, e.ac, e.bc)
}

// A bad wasm entry is rejected with its line, and a module without the ABI
// marker, or built for ABI v1, fails to start with a clear error while the
// server keeps serving.
func TestWASMConfigErrors(t *testing.T) {
	dir := t.TempDir()
	e := start(t, "plugins: []\n")
	e.write(t, fmt.Sprintf("plugins:\n  - id: x\n    kind: wasm\n    wasm: %s/x.wasm\n    command: [/bin/true]\n", dir))
	if err := e.reload(t); err == nil || !strings.Contains(err.Error(), "plugins.yaml:2") {
		t.Fatalf("wasm+command: %v", err)
	}
	e.write(t, "plugins:\n  - id: x\n    command: [/bin/true]\n    limits: {memory_mb: 5}\n")
	if err := e.reload(t); err == nil || !strings.Contains(err.Error(), "kind: wasm only") {
		t.Fatalf("wasm key on a process plugin: %v", err)
	}
	e.write(t, fmt.Sprintf(`plugins:
  - id: noabi
    kind: wasm
    wasm: %s/noabi.wasm
    source: %s
    restart: {max_crashes: 1}
  - id: abiv1
    kind: wasm
    wasm: %s/abiv1.wasm
    source: %s
    restart: {max_crashes: 1}
`, dir, wasmSrc(t, "core/pluginhost/wasmhost/testdata/noabi"), dir, wasmSrc(t, "core/pluginhost/wasmhost/testdata/abiv1")))
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "noabi to be refused", func() bool {
		return strings.Contains(e.status(t, "noabi").LastError, "not an Unhidra WASM module")
	})
	waitFor(t, "the ABI v1 module to be refused", func() bool {
		return strings.Contains(e.status(t, "abiv1").LastError, "built for WASM ABI v1")
	})
	alive(t, e.ac, e.bc)
}

// Done-when 2: a memory bomb traps at the cap without hurting other traffic.
func TestWASMMemoryBombIsContained(t *testing.T) {
	dir := t.TempDir()
	e := start(t, fmt.Sprintf(`plugins:
  - id: bomb
    kind: wasm
    wasm: %s/membomb.wasm
    source: %s
    limits: {memory_mb: 32, timeouts: {MessageWillBePosted: 10s}}
`, dir, wasmSrc(t, "core/pluginhost/wasmhost/testdata/membomb")))
	ack, err := send(e.bc, e.room, "eat all the memory")
	if err != nil || ack.Seq == 0 {
		t.Fatalf("send: %+v %v; want acked (fail-open) after the trap", ack, err)
	}
	if _, err := send(e.ac, e.room, "ok"); err != nil {
		t.Fatalf("traffic after the trap: %v", err)
	}
	st := e.status(t, "bomb")
	if st.WASM == nil || st.WASM.Traps < 1 || st.State != "running" {
		t.Fatalf("status %+v; want a counted trap and the module still running", st)
	}
	alive(t, e.ac, e.bc)
}
