// Package pluginhost runs Unhidra's plugins: it reads plugins.yaml, starts
// each process plugin through hashicorp/go-plugin (gRPC), supervises it
// (health checks, restarts with backoff, disable after repeated crashes),
// dispatches hooks in config order under deadlines, failure policies and
// circuit breakers, and serves the host API with every call checked against
// the plugin's grants.
//
// The host knows hooks and grants, never particular plugins. It implements
// chat.Hooks and auth.LoginHooks, so the core's send path calls plugins
// without knowing they exist.
package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/metrics"
	"github.com/unhidra/unhidra/core/pluginhost/wasmhost"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// Authorizer decides whether a plugin may make a host-API call. The
// authorization layer (Casbin) will implement it; until then Grants does, from
// plugins.yaml. A non-nil error refuses the call; its text is logged and
// returned to the plugin.
type Authorizer interface {
	AuthorizePlugin(ctx context.Context, r AuthzRequest) error
}

// AuthzRequest is one host-API call to decide: subject plugin:<Plugin> wants
// Capability; Grants are its grants in plugins.yaml.
type AuthzRequest struct {
	Plugin     string
	Capability string
	Grants     []string
}

// Grants is the Authorizer that allows exactly what plugins.yaml grants.
type Grants struct{}

// AuthorizePlugin implements Authorizer.
func (Grants) AuthorizePlugin(_ context.Context, r AuthzRequest) error {
	if slices.Contains(r.Grants, r.Capability) {
		return nil
	}
	return fmt.Errorf("plugin %s has no grant %q", r.Plugin, r.Capability)
}

// Options configures a Host.
type Options struct {
	// Path is plugins.yaml. Empty means no plugins (and Reload fails).
	Path    string
	Store   *store.Store
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Authorizer checks host-API calls (default Grants).
	Authorizer Authorizer
	// Executable runs first-party plugins as `Executable plugin <name>`
	// (default: this process's executable).
	Executable string
	// Builtins names the first-party plugins Executable can run; a builtin
	// not listed is a validation error. Nil skips the check.
	Builtins []string
	// Reattach maps plugin ids to already-running plugin processes (see
	// docs/plugins.md, "Debugging"); the host attaches instead of starting.
	Reattach map[string]*goplugin.ReattachConfig
	// WASMCacheDir holds compiled WASM modules across restarts (empty: in
	// memory only).
	WASMCacheDir string
	// HealthInterval is how often each plugin is pinged (default 5s).
	HealthInterval time.Duration
	// MissingOK makes a missing Path mean "no plugins" at Start (for the
	// default path, so the binary runs anywhere). Reload still needs it.
	MissingOK bool
	// Events receives plugin lifecycle and admin events, and is the stream
	// OnSecurityEvents delivers (nil: neither).
	Events *secevent.Outbox
}

// Host runs the plugins of one server.
type Host struct {
	o    Options
	chat *chat.Service

	reloadMu sync.Mutex // one reload at a time
	editMu   sync.Mutex // one SetEnabled edit of the plugins file at a time
	mu       sync.RWMutex
	plugins  map[string]*managed // enabled plugins by id
	file     *File
	loadedAt time.Time
	order    atomic.Pointer[[]*managed] // enabled plugins in config order: hook order

	cmdMu    sync.RWMutex
	commands map[string]*commandReg // trigger → owner

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	wasmOnce sync.Once
	wasm     *wasmhost.Engine
	wasmErr  error
}

type commandReg struct {
	m   *managed
	cmd *pb.Command
}

// New returns a Host; Start runs it.
func New(o Options) *Host {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Authorizer == nil {
		o.Authorizer = Grants{}
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = 5 * time.Second
	}
	h := &Host{o: o, plugins: map[string]*managed{}, commands: map[string]*commandReg{}}
	h.order.Store(&[]*managed{})
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// Start loads plugins.yaml and starts its enabled plugins, waiting for each
// one's first start attempt. ch is the chat service the host API posts with.
// A plugin that fails to start does not fail Start (it is retried and shows
// in Status); an invalid plugins.yaml does.
func (h *Host) Start(ctx context.Context, ch *chat.Service) error {
	h.chat = ch
	if h.o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own executable for builtin plugins: %w", err)
		}
		h.o.Executable = exe
	}
	h.wg.Add(1)
	go h.sweepKV()
	if h.o.Path == "" {
		return nil
	}
	_, err := h.reload(ctx)
	if err != nil && h.o.MissingOK && errors.Is(err, fs.ErrNotExist) {
		h.o.Logger.Info("no plugins file; running without plugins", "file", h.o.Path)
		return nil
	}
	return err
}

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Started      []string `json:"started"`
	Stopped      []string `json:"stopped"`
	Swapped      []string `json:"swapped"`
	Reconfigured []string `json:"reconfigured"`
}

// Reload re-reads plugins.yaml and applies it: new or newly enabled plugins
// start, removed or disabled ones stop, changed programs (or a changed
// executable file) are swapped in (start new, switch, stop old), changed
// config goes to OnConfigurationChange (or a swap when the plugin lacks it),
// and grants, limits and policies apply at once. WebSocket sessions are
// untouched. An invalid file changes nothing. Each reload is a
// plugins.reloaded security event (actor: the admin in ctx, else system).
func (h *Host) Reload(ctx context.Context) (ReloadResult, error) {
	res, err := h.reload(ctx)
	ev := secevent.Event{Type: secevent.PluginsReloaded, TargetKind: "plugins", Target: h.o.Path, Outcome: secevent.Success,
		Details: map[string]string{"started": strings.Join(res.Started, ","), "stopped": strings.Join(res.Stopped, ","),
			"swapped": strings.Join(res.Swapped, ","), "reconfigured": strings.Join(res.Reconfigured, ",")}}
	if err != nil {
		ev.Outcome, ev.Details["error"] = secevent.Failure, err.Error()
	}
	h.emit(ctx, ev)
	return res, err
}

// emit records a security event; the actor is the one ctx names, else
// system (the supervisor, SIGHUP).
func (h *Host) emit(ctx context.Context, ev secevent.Event) {
	if ev.Actor == "" && secevent.ActorOf(ctx) == "" {
		ev.Actor = secevent.System
	}
	h.o.Events.Emit(ctx, ev)
}

func (h *Host) reload(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	if h.o.Path == "" {
		return res, errors.New("no plugins file configured (--plugins)")
	}
	f, err := LoadFile(h.o.Path)
	if err != nil {
		return res, err
	}
	if err := h.checkBuiltins(f); err != nil {
		return res, err
	}
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if h.ctx.Err() != nil {
		return res, errors.New("plugin host is stopped")
	}
	h.mu.RLock()
	old := maps.Clone(h.plugins)
	h.mu.RUnlock()

	var order []*managed
	var starting []*managed
	next := map[string]*managed{}
	for i := range f.Plugins {
		spec := &f.Plugins[i]
		m := old[spec.ID]
		if !spec.Enabled {
			continue
		}
		var prior *managed
		if m != nil && m.finished() {
			// Disabled after repeated crashes: a reload gives it a fresh start.
			m.stop()
			h.dropCommands(m)
			delete(old, spec.ID)
			prior, m = m, nil
		}
		if m == nil {
			m = newManaged(h, spec)
			if prior != nil { // counters describe the plugin, not one supervisor
				prior.mu.Lock()
				m.starts, m.restarts = prior.starts, prior.restarts
				prior.mu.Unlock()
			}
			starting = append(starting, m)
			res.Started = append(res.Started, spec.ID)
		} else {
			prev := m.spec.Load()
			m.apply(spec)
			switch {
			case !sameProcess(prev, spec) || m.binaryChanged():
				if err := m.swap(ctx); err != nil {
					h.o.Logger.Error("plugin upgrade failed; the old process keeps running", "plugin", spec.ID, "err", err)
					h.emit(ctx, secevent.Event{Type: secevent.PluginUpgraded, Target: spec.ID, TargetKind: "plugin",
						Outcome: secevent.Failure, Details: map[string]string{"error": err.Error()}})
				} else {
					res.Swapped = append(res.Swapped, spec.ID)
					h.emit(ctx, secevent.Event{Type: secevent.PluginUpgraded, Target: spec.ID, TargetKind: "plugin", Outcome: secevent.Success})
				}
			case string(prev.Config) != string(spec.Config):
				if err := m.reconfigure(ctx); err != nil {
					h.o.Logger.Error("plugin reconfigure failed", "plugin", spec.ID, "err", err)
					h.emit(ctx, secevent.Event{Type: secevent.PluginReconfigured, Target: spec.ID, TargetKind: "plugin",
						Outcome: secevent.Failure, Details: map[string]string{"error": err.Error()}})
				} else {
					res.Reconfigured = append(res.Reconfigured, spec.ID)
					h.emit(ctx, secevent.Event{Type: secevent.PluginReconfigured, Target: spec.ID, TargetKind: "plugin", Outcome: secevent.Success})
				}
			}
		}
		next[spec.ID] = m
		order = append(order, m)
	}
	var stopping []*managed
	for id, m := range old {
		if next[id] == nil {
			stopping = append(stopping, m)
			res.Stopped = append(res.Stopped, id)
		}
	}
	// Stop removed plugins first: they leave the hook order at once.
	h.mu.Lock()
	h.plugins, h.file, h.loadedAt = next, f, time.Now()
	h.mu.Unlock()
	h.order.Store(&order)
	for _, m := range stopping {
		m.stop()
		h.dropCommands(m)
	}
	var wg sync.WaitGroup
	for _, m := range starting {
		wg.Add(1)
		go func() { defer wg.Done(); m.launch() }()
	}
	wg.Wait()
	slices.Sort(res.Stopped)
	h.o.Logger.Info("plugins loaded", "file", f.Path, "enabled", len(order), "started", res.Started,
		"stopped", res.Stopped, "swapped", res.Swapped, "reconfigured", res.Reconfigured)
	return res, nil
}

func (h *Host) checkBuiltins(f *File) error {
	if h.o.Builtins == nil {
		return nil
	}
	for _, s := range f.Plugins {
		if s.Builtin != "" && !slices.Contains(h.o.Builtins, s.Builtin) {
			return fmt.Errorf("%s:%d: plugin %q: unknown builtin %q (this binary has: %v)", f.Path, s.Line, s.ID, s.Builtin, h.o.Builtins)
		}
	}
	return nil
}

// Close deactivates and stops every plugin.
func (h *Host) Close() {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	h.cancel()
	h.mu.Lock()
	ps := h.plugins
	h.plugins = map[string]*managed{}
	h.mu.Unlock()
	h.order.Store(&[]*managed{})
	var wg sync.WaitGroup
	for _, m := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); m.stop() }()
	}
	wg.Wait()
	h.wg.Wait()
	if h.wasm != nil {
		_ = h.wasm.Close(context.Background())
	}
}

func (h *Host) sweepKV() {
	defer h.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
			if h.o.Store == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
			if _, err := h.o.Store.KVSweep(ctx); err != nil && h.ctx.Err() == nil {
				h.o.Logger.Warn("plugin kv sweep", "err", err)
			}
			cancel()
		}
	}
}

func (h *Host) plugin(id string) *managed {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.plugins[id]
}

func (h *Host) registerCommand(m *managed, c *pb.Command) error {
	h.cmdMu.Lock()
	defer h.cmdMu.Unlock()
	if r := h.commands[c.Trigger]; r != nil && r.m.id != m.id && h.plugin(r.m.id) == r.m {
		return fmt.Errorf("command /%s is registered by plugin %s", c.Trigger, r.m.id)
	}
	h.commands[c.Trigger] = &commandReg{m: m, cmd: c}
	return nil
}

func (h *Host) dropCommands(m *managed) {
	h.cmdMu.Lock()
	defer h.cmdMu.Unlock()
	for t, r := range h.commands {
		if r.m == m {
			delete(h.commands, t)
		}
	}
}

func (h *Host) commandsOf(m *managed) []string {
	h.cmdMu.RLock()
	defer h.cmdMu.RUnlock()
	var out []string
	for t, r := range h.commands {
		if r.m == m {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Status is one plugin as the admin API shows it.
type Status struct {
	ID              string       `json:"id"`
	Kind            string       `json:"kind"`
	Enabled         bool         `json:"enabled"`
	State           string       `json:"state"` // starting, running, restarting, crashed-disabled, disabled
	PID             int          `json:"pid,omitempty"`
	ContractVersion uint32       `json:"contract_version,omitempty"`
	SDK             string       `json:"sdk,omitempty"`
	Hooks           []string     `json:"hooks"`
	Commands        []string     `json:"commands"`
	Grants          []string     `json:"grants"`
	Starts          int64        `json:"starts"`
	Restarts        int64        `json:"restarts"`
	RecentCrashes   int          `json:"recent_crashes"`
	LastError       string       `json:"last_error,omitempty"`
	HookStats       []HookStatus `json:"hook_stats"`
	// Config is the plugin's effective config from plugins.yaml with the
	// values of secret-looking keys masked (see MaskConfig).
	Config json.RawMessage `json:"config"`
	// WASM has the module's sandbox counters (kind: wasm only).
	WASM *WASMStatus `json:"wasm,omitempty"`
}

// WASMStatus counts what a WASM module's sandbox contained.
type WASMStatus struct {
	Instantiations int64 `json:"instantiations"`
	Discards       int64 `json:"discards"`
	Traps          int64 `json:"traps"`
	Timeouts       int64 `json:"timeouts"`
	Malformed      int64 `json:"malformed"`
	Denied         int64 `json:"denied"`
}

// HookStatus is one plugin-hook pair's counters.
type HookStatus struct {
	Hook      string `json:"hook"`
	Calls     int64  `json:"calls"`
	Errors    int64  `json:"errors"`
	Timeouts  int64  `json:"timeouts"`
	Breaker   string `json:"breaker"`
	Policy    Policy `json:"policy"`
	TimeoutMs int64  `json:"timeout_ms"`
	// AvgMs is the mean duration of the calls that reached the plugin
	// (not those refused by the breaker or made while it was down).
	AvgMs float64 `json:"avg_ms"`
}

// Overview is the admin API's answer.
type Overview struct {
	File     string   `json:"file"`
	LoadedAt int64    `json:"loaded_at"`
	Plugins  []Status `json:"plugins"`
}

// Status reports every plugin in plugins.yaml, in file order.
func (h *Host) Status() Overview {
	h.mu.RLock()
	f, at := h.file, h.loadedAt
	ps := maps.Clone(h.plugins)
	h.mu.RUnlock()
	ov := Overview{File: h.o.Path, Plugins: []Status{}}
	if !at.IsZero() {
		ov.LoadedAt = at.UnixMilli()
	}
	if f == nil {
		return ov
	}
	for _, s := range f.Plugins {
		if m := ps[s.ID]; m != nil {
			ov.Plugins = append(ov.Plugins, m.status())
			continue
		}
		ov.Plugins = append(ov.Plugins, Status{ID: s.ID, Kind: s.Kind, State: "disabled", Hooks: []string{},
			Commands: []string{}, Grants: orEmpty(s.Grants), HookStats: []HookStatus{}, Config: MaskConfig(s.Config)})
	}
	return ov
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ParseReattach decodes UNHIDRA_PLUGIN_REATTACH: a JSON object from plugin
// id to the line a plugin prints in debug mode.
func ParseReattach(s string) (map[string]*goplugin.ReattachConfig, error) {
	if s == "" {
		return nil, nil
	}
	var raw map[string]struct {
		Protocol string `json:"protocol"`
		Network  string `json:"network"`
		Addr     string `json:"addr"`
		Pid      int    `json:"pid"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("UNHIDRA_PLUGIN_REATTACH: want {\"<id>\": {\"network\":…,\"addr\":…,\"pid\":…}}: %w", err)
	}
	out := map[string]*goplugin.ReattachConfig{}
	for id, r := range raw {
		var addr net.Addr
		switch r.Network {
		case "unix":
			addr = &net.UnixAddr{Name: r.Addr, Net: "unix"}
		case "tcp":
			a, err := net.ResolveTCPAddr("tcp", r.Addr)
			if err != nil {
				return nil, fmt.Errorf("UNHIDRA_PLUGIN_REATTACH[%s]: %w", id, err)
			}
			addr = a
		default:
			return nil, fmt.Errorf("UNHIDRA_PLUGIN_REATTACH[%s]: network %q: want unix or tcp", id, r.Network)
		}
		out[id] = &goplugin.ReattachConfig{Protocol: goplugin.ProtocolGRPC, ProtocolVersion: int(plugin.Handshake.ProtocolVersion),
			Addr: addr, Pid: r.Pid, Test: true}
	}
	return out, nil
}

// Masked replaces a secret value in MaskConfig's output.
const Masked = "••••••"

var secretKey = regexp.MustCompile(`(?i)secret|token|password|passwd|private|credential|api[_-]?key|^key$`)

// MaskConfig returns a plugin config (a JSON object) for the admin API with
// the value of every key that looks like it holds a secret — at any depth —
// replaced by Masked, so that operators can check a config without the
// console or its screenshots showing credentials. Empty input gives {}.
func MaskConfig(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`{}`)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return json.RawMessage(`{}`)
	}
	out, err := json.Marshal(maskValue(v, ""))
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return out
}

func maskValue(v any, key string) any {
	if key != "" && secretKey.MatchString(key) && v != nil && v != "" {
		return Masked
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = maskValue(e, k)
		}
	case []any:
		for i, e := range x {
			x[i] = maskValue(e, "")
		}
	}
	return v
}
