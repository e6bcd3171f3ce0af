package wasmhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

// built caches module builds for the whole test binary.
var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// module builds a guest (a folder under the repo's wasm/ or this package's
// testdata/) once and returns the .wasm path.
func module(t testing.TB, src string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[src]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "wasmhost-test")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, strings.NewReplacer("/", "_", ".", "_").Replace(src)+".wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := Build(ctx, src, out); err != nil {
		t.Fatalf("%v", err)
	}
	built[src] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// memHost is an in-memory Host for these unit tests; the core's real host
// (store-backed KV, chat posting) is exercised by the pluginhost tests.
type memHost struct {
	mu    sync.Mutex
	kv    map[string][]byte
	posts []string
}

func newMemHost() *memHost { return &memHost{kv: map[string][]byte{}} }

func (h *memHost) KVGet(_ context.Context, p, k string) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.kv[p+"/"+k]
	return v, ok, nil
}
func (h *memHost) KVSet(_ context.Context, p, k string, v []byte, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kv[p+"/"+k] = v
	return nil
}
func (h *memHost) KVCompareAndSet(_ context.Context, p, k string, old []byte, oldPresent bool, nv []byte, _ time.Duration) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur, ok := h.kv[p+"/"+k]
	if ok != oldPresent || (ok && !bytes.Equal(cur, old)) {
		return false, nil
	}
	h.kv[p+"/"+k] = nv
	return true, nil
}
func (h *memHost) KVDelete(_ context.Context, p, k string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.kv, p+"/"+k)
	return nil
}
func (h *memHost) KVList(_ context.Context, p, prefix string) ([]KVEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []KVEntry
	for k, v := range h.kv {
		if strings.HasPrefix(k, p+"/"+prefix) {
			out = append(out, KVEntry{Key: strings.TrimPrefix(k, p+"/"), Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
func (h *memHost) Post(_ context.Context, p, room, text string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.posts = append(h.posts, p+"@"+room+": "+text)
	return fmt.Sprintf("m%d", len(h.posts)), nil
}

// Call has no host API behind it here (pluginhost's tests run the real one).
func (h *memHost) Call(_ context.Context, _, method string, _ []byte) ([]byte, error) {
	return nil, fmt.Errorf("UNIMPLEMENTED: %s is not served by the test host", method)
}

var engineOnce struct {
	sync.Once
	e *Engine
}

func engine(t testing.TB) *Engine {
	engineOnce.Do(func() {
		e, err := NewEngine(EngineOptions{CacheDir: filepath.Join(os.TempDir(), "unhidra-wasmhost-test-cache"),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		engineOnce.e = e
	})
	return engineOnce.e
}

func load(t testing.TB, src string, o ModuleOptions) *Module {
	t.Helper()
	o.Path = module(t, src)
	if o.ID == "" {
		o.ID = filepath.Base(src)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
	}
	m, err := engine(t).Load(context.Background(), o)
	if err != nil {
		t.Fatalf("load %s: %v", src, err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// post is MessageWillBePosted's (or, for the fields read, an event's)
// input as the host writes it.
func post(text string) []byte { return postIn("r1", text) }

func postIn(room, text string) []byte {
	b, _ := json.Marshal(unhidra.MessageWillBePostedRequest{Message: &unhidra.Message{Room: room, Sender: "u1", Text: text}})
	return b
}

func command(trigger, args, room string) []byte {
	b, _ := json.Marshal(unhidra.CommandRequest{Trigger: trigger, Args: args, Room: room, UserId: "u1"})
	return b
}

func decision(t testing.TB, raw json.RawMessage) unhidra.MessageVerdict {
	t.Helper()
	var d unhidra.MessageVerdict
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("decision %s: %v", raw, err)
		}
	}
	return d
}

func callCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// patience is the deadline of calls whose timing is not under test: a
// hang guard, long enough for a loaded CI machine (where starting an
// instance alone can take most of a second).
const patience = time.Minute

func TestWordfilter(t *testing.T) {
	rej := load(t, "../../../wasm/wordfilter", ModuleOptions{ID: "wf-reject", Config: []byte(`{"words":["darn","Heck"]}`)})
	mask := load(t, "../../../wasm/wordfilter", ModuleOptions{ID: "wf-mask", Config: []byte(`{"words":["darn"],"mode":"mask"}`)})
	if !rej.Implements(unhidra.HookMessageWillBePosted) || rej.Implements(unhidra.HookExecuteCommand) {
		t.Fatalf("hooks = %v", rej.Description().Hooks)
	}
	cases := []struct {
		m          *Module
		in, reject string
		out        string
	}{
		{rej, "hello there", "", ""},
		{rej, "well DARN it", "message contains a blocked word", ""},
		{rej, "oh heck!", "message contains a blocked word", ""},
		{rej, "darning socks", "", ""}, // whole words only
		{mask, "well darn it, darn", "", "well **** it, ****"},
		{mask, "fine", "", ""},
	}
	for _, c := range cases {
		ctx, cancel := callCtx(patience)
		raw, err := c.m.Call(ctx, unhidra.HookMessageWillBePosted, post(c.in))
		cancel()
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		d := decision(t, raw)
		if d.Reason != c.reject || (c.reject != "") != (d.Action == unhidra.Action_ACTION_REJECT) {
			t.Errorf("%q: %v %q, want reject %q", c.in, d.Action, d.Reason, c.reject)
		}
		got := ""
		if d.Action == unhidra.Action_ACTION_MODIFY {
			got = d.Text
		}
		if got != c.out {
			t.Errorf("%q: rewritten to %q, want %q", c.in, got, c.out)
		}
	}
}

func TestEchobot(t *testing.T) {
	h := newMemHost()
	m := load(t, "../../../wasm/echobot", ModuleOptions{Host: h, Grants: Grants{Post: []string{"r1"}}})
	d := m.Description()
	if len(d.Commands) != 1 || d.Commands[0].Trigger != "echo" {
		t.Fatalf("commands = %+v", d.Commands)
	}
	ctx, cancel := callCtx(patience)
	defer cancel()
	raw, err := m.Call(ctx, unhidra.HookExecuteCommand, command("echo", "hi there", "r1"))
	if err != nil {
		t.Fatal(err)
	}
	var resp unhidra.CommandResponse
	_ = json.Unmarshal(raw, &resp)
	if resp.Text != "hi there" || resp.Visibility != unhidra.Visibility_VISIBILITY_IN_ROOM {
		t.Fatalf("response = %+v", resp)
	}
	// A mention is answered through the post capability, only where granted.
	if _, err := m.Call(ctx, unhidra.HookMessageHasBeenPosted, post("hey @echobot")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(ctx, unhidra.HookMessageHasBeenPosted, postIn("r2", "@echobot?")); err != nil {
		t.Fatal(err)
	}
	if len(h.posts) != 1 || h.posts[0] != "echobot@r1: echo: hey @echobot" {
		t.Fatalf("posts = %q", h.posts)
	}
	if m.Stats().Denied.Load() != 1 {
		t.Fatalf("denied = %d, want 1 (post to r2)", m.Stats().Denied.Load())
	}
}

func TestCounterKVConcurrent(t *testing.T) {
	h := newMemHost()
	m := load(t, "../../../wasm/counter", ModuleOptions{Host: h, Grants: Grants{KV: true}, MaxInstances: 4})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				ctx, cancel := callCtx(patience)
				if _, err := m.Call(ctx, unhidra.HookMessageHasBeenPosted, post("x")); err != nil {
					t.Error(err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	ctx, cancel := callCtx(patience)
	defer cancel()
	raw, err := m.Call(ctx, unhidra.HookExecuteCommand, command("count", "", "r1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "seen 100 messages") {
		t.Fatalf("count = %s", raw)
	}
	// The pool grows with concurrency but never past MaxInstances.
	if n := m.Stats().Instantiations.Load(); n < 1 || n > 4 {
		t.Errorf("instances = %d, want at most the pool bound 4", n)
	}
}

func TestFaultsAreContained(t *testing.T) {
	t.Run("infinite loop costs at most the deadline", func(t *testing.T) {
		// One instance: a looping instance kept in the pool, or its slot
		// lost, would leave nothing to serve the healthy call below.
		m := load(t, "testdata/loop", ModuleOptions{MaxInstances: 1})
		for i := 0; i < 3; i++ {
			start := time.Now()
			ctx, cancel := callCtx(50 * time.Millisecond)
			_, err := m.Call(ctx, unhidra.HookMessageWillBePosted, post("spin"))
			cancel()
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
			// The loop never ends by itself: any bound shows the deadline
			// stopped it (this one leaves room for a loaded machine).
			if el := time.Since(start); el > 10*time.Second {
				t.Fatalf("a 50ms deadline took %v", el)
			}
		}
		ctx, cancel := callCtx(patience)
		defer cancel()
		if _, err := m.Call(ctx, unhidra.HookMessageWillBePosted, post("ok")); err != nil {
			t.Fatalf("after timeouts: %v", err)
		}
		// The first call always ran the loop (the instance Load started was
		// idle); a later one may have timed out while its instance was still
		// starting, on a loaded machine, leaving nothing to discard. Either
		// way every instance the loop ran in was discarded: one is left, the
		// one that served "ok".
		s := m.Stats()
		if s.Timeouts.Load() != 3 || s.Discards.Load() < 1 || s.Instantiations.Load()-s.Discards.Load() != 1 {
			t.Fatalf("timeouts %d, instantiations %d, discards %d; want 3 timeouts and one live instance",
				s.Timeouts.Load(), s.Instantiations.Load(), s.Discards.Load())
		}
	})
	t.Run("memory bomb traps at the cap", func(t *testing.T) {
		m := load(t, "testdata/membomb", ModuleOptions{MemoryLimitMB: 32})
		ctx, cancel := callCtx(patience)
		defer cancel()
		_, err := m.Call(ctx, unhidra.HookMessageWillBePosted, post("eat"))
		if !errors.Is(err, ErrTrap) {
			t.Fatalf("err = %v, want ErrTrap", err)
		}
		if _, err := m.Call(ctx, unhidra.HookMessageWillBePosted, post("ok")); err != nil {
			t.Fatalf("after trap: %v", err)
		}
	})
	t.Run("panic is an error, fatal error is a trap", func(t *testing.T) {
		m := load(t, "testdata/panicky", ModuleOptions{})
		ctx, cancel := callCtx(patience)
		defer cancel()
		_, err := m.Call(ctx, unhidra.HookMessageWillBePosted, post("boom"))
		if err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("panic: %v", err)
		}
		if _, err := m.Call(ctx, unhidra.HookExecuteCommand, command("die", "", "")); !errors.Is(err, ErrTrap) {
			t.Fatalf("stack overflow: %v, want ErrTrap", err)
		}
		if _, err := m.Call(ctx, unhidra.HookMessageWillBePosted, post("ok")); err != nil {
			t.Fatalf("after fatal: %v", err)
		}
	})
	t.Run("ungranted host calls fail", func(t *testing.T) {
		m := load(t, "testdata/ungranted", ModuleOptions{Host: newMemHost()})
		// The refusal names the plugins.yaml grant (messages.post, not "post").
		for what, grant := range map[string]string{"kv": "kv", "post": "messages.post", "http": "http"} {
			ctx, cancel := callCtx(patience)
			raw, err := m.Call(ctx, unhidra.HookMessageWillBePosted, post(what))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if d, want := decision(t, raw), "permission denied: plugin ungranted has no "+grant+" grant"; d.Reason != want {
				t.Errorf("%s: %q, want %q", what, d.Reason, want)
			}
		}
		if m.Stats().Denied.Load() != 3 {
			t.Fatalf("denied = %d", m.Stats().Denied.Load())
		}
	})
	t.Run("malformed output", func(t *testing.T) {
		m := load(t, "testdata/malformed", ModuleOptions{})
		ctx, cancel := callCtx(patience)
		defer cancel()
		if _, err := m.Call(ctx, unhidra.HookMessageWillBePosted, post("x")); !errors.Is(err, ErrMalformed) {
			t.Fatalf("garbage: %v", err)
		}
		if _, err := m.Call(ctx, unhidra.HookExecuteCommand, []byte(`{}`)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("out of bounds: %v", err)
		}
		if m.Stats().Malformed.Load() != 2 {
			t.Fatalf("malformed = %d", m.Stats().Malformed.Load())
		}
	})
	t.Run("missing ABI marker is refused at load", func(t *testing.T) {
		_, err := engine(t).Load(context.Background(), ModuleOptions{ID: "noabi", Path: module(t, "testdata/noabi")})
		if err == nil || !strings.Contains(err.Error(), "not an Unhidra WASM module") {
			t.Fatalf("err = %v", err)
		}
		_, err = engine(t).Load(context.Background(), ModuleOptions{ID: "abiv1", Path: module(t, "testdata/abiv1")})
		if err == nil || !strings.Contains(err.Error(), "built for WASM ABI v1") || !strings.Contains(err.Error(), "rebuild it with the current sdk/wasm") {
			t.Fatalf("ABI v1 module: %v", err)
		}
		_, err = engine(t).Load(context.Background(), ModuleOptions{ID: "junk", Wasm: []byte("not wasm at all")})
		if err == nil || !strings.Contains(err.Error(), "compile") {
			t.Fatalf("junk: %v", err)
		}
	})
	t.Run("hooks the module lacks are never called", func(t *testing.T) {
		m := load(t, "testdata/trivial", ModuleOptions{})
		if _, err := m.Call(context.Background(), unhidra.HookExecuteCommand, nil); !errors.Is(err, ErrNoHook) {
			t.Fatalf("err = %v", err)
		}
	})
}

// An instance start outlives the call that asked for it: the call stops
// waiting (here it is cancelled as soon as the start begins) and the
// instance joins the pool, so where starting takes longer than a hook's
// deadline calls still get instances.
func TestAbandonedStartJoinsThePool(t *testing.T) {
	m := load(t, "testdata/loop", ModuleOptions{MaxInstances: 1})
	first, err := m.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m.discard(first) // the pool is empty, its one slot free
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(m.slots) == 0 { // until get has taken the slot to start one
			runtime.Gosched()
		}
		cancel()
	}()
	if inst, err := m.get(ctx); err == nil {
		m.put(inst) // the start won the race with the cancel
	}
	select {
	case inst := <-m.idle:
		m.put(inst)
	case <-time.After(patience):
		t.Fatal("the instance started for a call that stopped waiting never reached the pool")
	}
	if s := m.Stats(); s.Instantiations.Load() != 2 || s.Discards.Load() != 1 {
		t.Fatalf("instantiations %d, discards %d; want 2 and 1", s.Instantiations.Load(), s.Discards.Load())
	}
}

func TestHTTPCapability(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(bytes.Repeat([]byte("x"), 4096))
			return
		}
		io.WriteString(w, "pong")
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	fetch := func(m *Module, url string) (string, error) {
		ctx, cancel := callCtx(patience)
		defer cancel()
		raw, err := m.Call(ctx, unhidra.HookExecuteCommand, command("fetch", url, ""))
		if err != nil {
			return "", err
		}
		var r unhidra.CommandResponse
		_ = json.Unmarshal(raw, &r)
		return r.Text, nil
	}
	// Allow-listed names that resolve to loopback or private space are refused.
	strict := load(t, "testdata/fetcher", ModuleOptions{ID: "strict", Grants: Grants{HTTP: []string{"localhost", "127.0.0.1", "10.1.2.3"}}})
	for _, u := range []string{"http://localhost:" + port + "/", "http://127.0.0.1:" + port + "/", "http://10.1.2.3:" + port + "/",
		"http://[::1]:" + port + "/", "http://example.com/", "file:///etc/passwd"} {
		if out, err := fetch(strict, u); err == nil || !(strings.Contains(err.Error(), "not public") ||
			strings.Contains(err.Error(), "allow-list") || strings.Contains(err.Error(), "must be absolute")) {
			t.Errorf("%s: got %q, %v; want refusal", u, out, err)
		}
	}
	// An operator can open a specific internal network explicitly.
	open := load(t, "testdata/fetcher", ModuleOptions{ID: "open", Grants: Grants{HTTP: []string{"127.0.0.1"},
		HTTPAllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, HTTPMaxBody: 1024}})
	if out, err := fetch(open, srv.URL+"/"); err != nil || out != "200 pong" {
		t.Fatalf("allowed fetch: %q, %v", out, err)
	}
	if _, err := fetch(open, srv.URL+"/big"); err == nil || !strings.Contains(err.Error(), "exceeds 1024 bytes") {
		t.Fatalf("body cap: %v", err)
	}
}

func TestPublicAddr(t *testing.T) {
	for s, want := range map[string]bool{"8.8.8.8": true, "2001:4860::8888": true, "127.0.0.1": false, "10.0.0.1": false,
		"172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false, "0.0.0.0": false, "::1": false,
		"fe80::1": false, "fc00::1": false, "100.64.0.1": false, "::ffff:127.0.0.1": false} {
		if got := publicAddr(netip.MustParseAddr(s).Unmap()); got != want {
			t.Errorf("publicAddr(%s) = %v", s, got)
		}
	}
}

func BenchmarkTrivialHook(b *testing.B) {
	m := load(b, "testdata/trivial", ModuleOptions{MaxInstances: 1})
	in := post("hello")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Call(ctx, unhidra.HookMessageWillBePosted, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWordfilter256(b *testing.B) {
	m := load(b, "../../../wasm/wordfilter", ModuleOptions{MaxInstances: 1, Config: []byte(`{"words":["darn","heck","blast"]}`)})
	in := post(strings.Repeat("the quick brown fox jumps over ", 9)[:256])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond) // deadline enforced
		if _, err := m.Call(ctx, unhidra.HookMessageWillBePosted, in); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

func BenchmarkInstantiateFromCache(b *testing.B) {
	path := module(b, "../../../wasm/wordfilter")
	wasm, _ := os.ReadFile(path)
	e := engine(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := e.Load(ctx, ModuleOptions{ID: "wf", Wasm: wasm, Config: []byte(`{}`), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		m.Close(ctx)
	}
}

// A filter that allocates on every call keeps its instance's memory bounded
// (the guest's GC runs — through allocation assists and the SDK's periodic
// yield) instead of growing into the cap and trapping.
func TestGuestMemoryStaysBounded(t *testing.T) {
	m := load(t, "../../../wasm/wordfilter", ModuleOptions{ID: "wf-gc", MaxInstances: 1, MemoryLimitMB: 16,
		RecycleAfter: 1 << 30, Config: []byte(`{"words":["darn"],"mode":"mask"}`)})
	// ~14 KB in; the mask allocates several copies (≈100 KB per call), so
	// 400 calls allocate ≈40 MB against a 16 MB cap.
	in := post(strings.Repeat("darn it, ", 1500))
	ctx := context.Background()
	for i := 0; i < 400; i++ {
		if _, err := m.Call(ctx, unhidra.HookMessageWillBePosted, in); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := m.Stats().Instantiations.Load(); n != 1 {
		t.Fatalf("%d instantiations: the instance trapped (memory grew to the cap)", n)
	}
}
