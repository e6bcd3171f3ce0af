// Package wasmhost runs Unhidra WASM plugins (ABI v2, docs/wasm-abi.md) in
// process with wazero. Each module gets its own wazero runtime (so its
// memory cap and host functions are its own), is compiled once at load
// through an on-disk compilation cache, and serves calls from a bounded pool
// of initialised instances. An instance that traps, panics, runs past its
// deadline, runs out of memory or returns garbage is discarded, never reused;
// healthy instances are recycled after a number of calls.
//
// Grants are checked by every host function: a module can reach KV, post or
// HTTP only when plugins.yaml says so. There is no filesystem, no
// environment and no real sleep.
package wasmhost

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

// Errors a call can end with. Callers apply the hook's failure policy.
var (
	ErrNoHook    = errors.New("module does not implement this hook")
	ErrTimeout   = errors.New("hook exceeded its deadline")
	ErrTrap      = errors.New("module trapped")
	ErrMalformed = errors.New("module returned malformed output")
	ErrClosed    = errors.New("module is closed")
)

// EngineOptions configures an Engine.
type EngineOptions struct {
	// CacheDir holds compiled modules across restarts. Empty means an
	// in-memory cache.
	CacheDir string
	Logger   *slog.Logger
}

// Engine loads modules. It owns the compilation cache they share.
type Engine struct {
	cache wazero.CompilationCache
	log   *slog.Logger
}

// NewEngine returns an Engine.
func NewEngine(o EngineOptions) (*Engine, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var (
		cache wazero.CompilationCache
		err   error
	)
	if o.CacheDir != "" {
		if err := os.MkdirAll(o.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("wasm cache dir %s: %w", o.CacheDir, err)
		}
		cache, err = wazero.NewCompilationCacheWithDir(o.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm cache dir %s: %w", o.CacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	return &Engine{cache: cache, log: o.Logger}, nil
}

// Close releases the compilation cache.
func (e *Engine) Close(ctx context.Context) error { return e.cache.Close(ctx) }

// ModuleOptions describe one module to load.
type ModuleOptions struct {
	// ID names the module in logs, KV namespaces and the bot identity.
	ID string
	// Path is the .wasm file (or set Wasm).
	Path string
	Wasm []byte
	// Config is the module's config from plugins.yaml, as JSON.
	Config []byte
	Grants Grants
	// Host provides KV and posting; required when those grants are given.
	Host Host
	// MemoryLimitMB caps each instance's linear memory (default 64).
	MemoryLimitMB uint32
	// MaxInstances bounds the pool (default 4). Calls beyond it wait.
	MaxInstances int
	// RecycleAfter discards an instance after this many calls (default 10000).
	RecycleAfter int
	Logger       *slog.Logger
	// Stdout and Stderr receive the guest's output (nil: discarded).
	Stdout, Stderr io.Writer
	// OnDenied observes each refused host call (for metrics). Optional.
	OnDenied func(capability string)
}

// Module is a loaded module with its instance pool.
type Module struct {
	id     string
	opts   ModuleOptions
	rt     wazero.Runtime
	code   wazero.CompiledModule
	desc   unhidra.Description
	hooks  map[string]bool
	log    *slog.Logger
	http   *httpCap
	posts  *tokenBucket
	idle   chan *instance
	slots  chan struct{} // one token per live instance
	closed atomic.Bool
	stats  Stats
	wg     sync.WaitGroup
}

// Stats are counters of a module, for metrics and the admin console.
type Stats struct {
	Calls, Errors, Timeouts, Traps, Malformed, Denied, Instantiations, Discards atomic.Int64
}

type instance struct {
	mod                api.Module
	call, malloc, free api.Function
	in                 uint32 // guest buffer reused for hook name + input
	inCap              uint32
	calls              int
}

const pageSize = 65536

// Load compiles and validates a module and starts its first instance, so
// that the first message does not pay for compilation. A file that is not
// an Unhidra ABI v2 module (an ABI v1 one included) is refused here with a
// clear message.
func (e *Engine) Load(ctx context.Context, o ModuleOptions) (*Module, error) {
	if o.ID == "" {
		return nil, errors.New("wasm module: ID is required")
	}
	if o.MemoryLimitMB == 0 {
		o.MemoryLimitMB = 64
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = 4
	}
	if o.RecycleAfter <= 0 {
		o.RecycleAfter = 10000
	}
	if o.Logger == nil {
		o.Logger = e.log
	}
	if o.Wasm == nil {
		b, err := os.ReadFile(o.Path)
		if err != nil {
			return nil, fmt.Errorf("wasm module %s: %w", o.ID, err)
		}
		o.Wasm = b
	}
	if (o.Grants.KV || len(o.Grants.Post) > 0) && o.Host == nil {
		return nil, fmt.Errorf("wasm module %s: kv/post grants need a Host", o.ID)
	}
	log := o.Logger.With("plugin", o.ID, "kind", "wasm")
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(e.cache).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(o.MemoryLimitMB * (1 << 20) / pageSize)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	m := &Module{id: o.ID, opts: o, rt: rt, log: log, hooks: map[string]bool{},
		idle: make(chan *instance, o.MaxInstances), slots: make(chan struct{}, o.MaxInstances),
		posts: newTokenBucket(5, 10)}
	fail := func(err error) (*Module, error) {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm module %s: %w", o.ID, err)
	}
	m.http = newHTTPCap(o.Grants)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fail(err)
	}
	if err := m.instantiateHost(ctx); err != nil {
		return fail(err)
	}
	code, err := rt.CompileModule(ctx, o.Wasm)
	if err != nil {
		return fail(fmt.Errorf("compile: %w", err))
	}
	m.code = code
	exports := code.ExportedFunctions()
	if _, ok := exports["unhidra_abi"]; !ok {
		if _, v1 := exports["unhidra_abi_v1"]; v1 {
			return fail(fmt.Errorf("built for WASM ABI v1, this host speaks ABI v%d (hook payloads are now the contract's protojson): rebuild it with the current sdk/wasm (docs/wasm-abi.md)", unhidra.ABIVersion))
		}
		return fail(errors.New("not an Unhidra WASM module: it lacks the unhidra_abi export (build it with sdk/wasm, see docs/wasm-abi.md)"))
	}
	for _, name := range []string{"unhidra_malloc", "unhidra_free", "unhidra_describe", "unhidra_call"} {
		if _, ok := exports[name]; !ok {
			return fail(fmt.Errorf("ABI v%d module lacks the %s export", unhidra.ABIVersion, name))
		}
	}
	for _, imp := range code.ImportedFunctions() {
		mod, name, _ := imp.Import()
		if mod != "unhidra" && mod != wasi_snapshot_preview1.ModuleName {
			return fail(fmt.Errorf("imports %s.%s, which the host does not provide", mod, name))
		}
	}
	// First instance: proves the module runs and tells us its hooks.
	inst, err := m.newInstance(ctx)
	if err != nil {
		return fail(err)
	}
	m.slots <- struct{}{}
	r, err := inst.mod.ExportedFunction("unhidra_abi").Call(ctx)
	if err != nil || len(r) != 1 || r[0] != unhidra.ABIVersion {
		return fail(fmt.Errorf("unhidra_abi returned %v (%v); this host speaks ABI %d", r, err, unhidra.ABIVersion))
	}
	d, err := m.describe(ctx, inst)
	if err != nil {
		return fail(err)
	}
	m.desc = d
	for _, h := range d.Hooks {
		m.hooks[h] = true
	}
	if err := m.activate(ctx, inst); err != nil {
		return fail(err)
	}
	m.idle <- inst
	log.Info("wasm module loaded", "hooks", d.Hooks, "memory_limit_mb", o.MemoryLimitMB, "instances", o.MaxInstances)
	return m, nil
}

// ID returns the module's id.
func (m *Module) ID() string { return m.id }

// Description returns the hooks and commands the module declared.
func (m *Module) Description() unhidra.Description { return m.desc }

// Implements reports whether the module implements hook.
func (m *Module) Implements(hook string) bool { return m.hooks[hook] }

// Stats returns the module's counters.
func (m *Module) Stats() *Stats { return &m.stats }

func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").
		WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader).
		WithStdout(orDiscard(m.opts.Stdout)).WithStderr(orDiscard(m.opts.Stderr))
	mod, err := m.rt.InstantiateModule(ctx, m.code, mc)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	m.stats.Instantiations.Add(1)
	return &instance{mod: mod, call: mod.ExportedFunction("unhidra_call"),
		malloc: mod.ExportedFunction("unhidra_malloc"), free: mod.ExportedFunction("unhidra_free")}, nil
}

func (m *Module) describe(ctx context.Context, inst *instance) (unhidra.Description, error) {
	var d unhidra.Description
	r, err := inst.mod.ExportedFunction("unhidra_describe").Call(ctx)
	if err != nil {
		return d, fmt.Errorf("describe: %w", err)
	}
	out, err := m.readOut(ctx, inst, r[0])
	if err != nil {
		return d, fmt.Errorf("describe: %w", err)
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return d, fmt.Errorf("describe returned malformed JSON: %w", err)
	}
	if d.ABI != unhidra.ABIVersion {
		return d, fmt.Errorf("describe says ABI %d; this host speaks %d", d.ABI, unhidra.ABIVersion)
	}
	return d, nil
}

// activate runs OnActivate in a fresh instance (globals are per instance).
func (m *Module) activate(ctx context.Context, inst *instance) error {
	if !m.hooks[unhidra.HookOnActivate] {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	in, err := json.Marshal(unhidra.ActivateRequest{PluginId: m.id, ConfigJson: m.opts.Config})
	if err != nil {
		return fmt.Errorf("OnActivate: %w", err)
	}
	_, err = m.invoke(actx, inst, unhidra.HookOnActivate, in)
	if err != nil {
		return fmt.Errorf("OnActivate: %w", err)
	}
	return nil
}

// readOut copies a packed ptr/len result out of guest memory and frees it
// (describe results; call results are owned by the guest, see readCallOut).
func (m *Module) readOut(ctx context.Context, inst *instance, packed uint64) ([]byte, error) {
	ptr, n := uint32(packed>>32), uint32(packed)
	if n == 0 {
		return nil, nil
	}
	b, ok := inst.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%w: result (%d, %d) is outside memory", ErrMalformed, ptr, n)
	}
	out := slices.Clone(b)
	if _, err := inst.free.Call(ctx, uint64(ptr)); err != nil {
		return nil, err
	}
	return out, nil
}

// Call runs hook with its protojson input in under ctx's deadline and
// returns the hook's protojson answer. An error the hook itself returned is
// a *HookError; any other failure discards the instance.
func (m *Module) Call(ctx context.Context, hook string, in []byte) (json.RawMessage, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if !m.hooks[hook] {
		return nil, fmt.Errorf("%s: %w", hook, ErrNoHook)
	}
	m.stats.Calls.Add(1)
	inst, err := m.get(ctx)
	if err != nil {
		m.stats.Errors.Add(1)
		if errors.Is(err, context.DeadlineExceeded) {
			m.stats.Timeouts.Add(1)
			return nil, fmt.Errorf("%s: waiting for an instance: %w", hook, ErrTimeout)
		}
		return nil, err
	}
	out, err := m.invoke(ctx, inst, hook, in)
	var he *HookError
	switch {
	case err == nil, errors.As(err, &he):
		inst.calls++
		m.put(inst)
	default:
		m.discard(inst)
	}
	if err != nil {
		m.stats.Errors.Add(1)
		switch {
		case errors.Is(err, ErrTimeout):
			m.stats.Timeouts.Add(1)
		case errors.Is(err, ErrTrap):
			m.stats.Traps.Add(1)
		case errors.Is(err, ErrMalformed):
			m.stats.Malformed.Add(1)
		}
		m.log.Warn("wasm hook failed", "hook", hook, "err", err)
	}
	return out, err
}

// HookError is an error the module's hook returned deliberately (its
// CallResult envelope's "error"); the instance stays in service. Traps,
// timeouts and malformed output are the other errors Call returns.
type HookError struct{ Msg string }

func (e *HookError) Error() string { return e.Msg }

type stateKey struct{}

// callState is what host functions see of the call in progress.
type callState struct {
	m       *Module
	hook    string
	pending []byte
}

func (m *Module) invoke(ctx context.Context, inst *instance, hook string, in []byte) (json.RawMessage, error) {
	cs := &callState{m: m, hook: hook}
	ctx = context.WithValue(ctx, stateKey{}, cs)
	need := uint32(len(hook) + len(in))
	if need > inst.inCap {
		if inst.inCap > 0 {
			if _, err := inst.free.Call(ctx, uint64(inst.in)); err != nil {
				return nil, m.classify(ctx, err)
			}
		}
		c := need
		if c < 4096 {
			c = 4096
		}
		r, err := inst.malloc.Call(ctx, uint64(c))
		if err != nil {
			return nil, m.classify(ctx, err)
		}
		inst.in, inst.inCap = uint32(r[0]), c
	}
	mem := inst.mod.Memory()
	if !mem.WriteString(inst.in, hook) || !mem.Write(inst.in+uint32(len(hook)), in) {
		return nil, fmt.Errorf("%w: input buffer outside memory", ErrMalformed)
	}
	r, err := inst.call.Call(ctx, uint64(inst.in), uint64(len(hook)), uint64(inst.in)+uint64(len(hook)), uint64(len(in)))
	if err != nil {
		return nil, m.classify(ctx, err)
	}
	// The answer stays owned by the guest until its next call: copy it.
	ptr, n := uint32(r[0]>>32), uint32(r[0])
	var out []byte
	if n > 0 {
		b, okr := mem.Read(ptr, n)
		if !okr {
			return nil, fmt.Errorf("%w: result (%d, %d) is outside memory", ErrMalformed, ptr, n)
		}
		out = b // decoded below before the instance runs again
	}
	var env unhidra.CallResult
	if err := json.Unmarshal(out, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.Error != "" {
		return nil, &HookError{Msg: env.Error}
	}
	return env.Result, nil
}

// classify maps a wazero call error to ErrTimeout or ErrTrap.
func (m *Module) classify(ctx context.Context, err error) error {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("%w: %v", ErrTimeout, err)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("%w: canceled: %v", ErrTimeout, err)
		}
		return fmt.Errorf("%w: module exited with code %d", ErrTrap, ee.ExitCode())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrTrap, err)
}

// startTimeout bounds starting one instance (instantiation and OnActivate),
// whichever call asked for it.
const startTimeout = 10 * time.Second

// get takes an idle instance, starts a new one if the pool has room, or
// waits for one until ctx ends. A start does not end with the call that
// asked for it: when the call stops waiting (its deadline passed, or an idle
// instance came first), the new instance joins the pool. Cut short, a start
// would be wasted, and where starting takes longer than a hook's deadline (a
// loaded machine) every call would begin one and none would finish.
func (m *Module) get(ctx context.Context) (*instance, error) {
	select {
	case inst := <-m.idle:
		return inst, nil
	default:
	}
	select {
	case inst := <-m.idle:
		return inst, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case m.slots <- struct{}{}:
	}
	res, gone := make(chan startResult), make(chan struct{})
	defer close(gone)
	go m.start(res, gone)
	select {
	case r := <-res:
		return r.inst, r.err
	case inst := <-m.idle:
		return inst, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type startResult struct {
	inst *instance
	err  error
}

// start starts an instance in the slot its caller took and hands it over,
// or puts it in the pool once the caller is gone. A failed start frees the
// slot.
func (m *Module) start(to chan<- startResult, gone <-chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	inst, err := m.newInstance(ctx)
	if err != nil {
		<-m.slots
	} else if err = m.activate(ctx, inst); err != nil {
		m.discard(inst)
		inst = nil
	}
	select {
	case to <- startResult{inst, err}:
	case <-gone:
		if err != nil {
			m.log.Warn("wasm instance failed to start", "err", err)
			return
		}
		m.put(inst)
	}
}

func (m *Module) put(inst *instance) {
	if inst.calls >= m.opts.RecycleAfter || m.closed.Load() {
		m.discard(inst)
		return
	}
	m.idle <- inst
}

func (m *Module) discard(inst *instance) {
	m.stats.Discards.Add(1)
	_ = inst.mod.Close(context.Background())
	<-m.slots
}

// Close stops every instance and the module's runtime.
func (m *Module) Close(ctx context.Context) error {
	if m.closed.Swap(true) {
		return nil
	}
	for {
		select {
		case inst := <-m.idle:
			_ = inst.mod.Close(ctx)
			<-m.slots
			continue
		default:
		}
		break
	}
	return m.rt.Close(ctx)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// CacheDirFor returns the default compilation cache dir under a data dir.
func CacheDirFor(dataDir string) string { return filepath.Join(dataDir, "wasm-cache") }
