package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/unhidra/unhidra/core/pluginhost/wasmhost"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// numHooks bounds the Hook enum (hook bitsets are uint64).
var numHooks = len(pb.Hook_name)

// managed is one enabled plugin across process restarts and upgrades. Its
// hook states (breakers, counters) outlive any one process.
type managed struct {
	h    *Host
	id   string
	spec atomic.Pointer[Spec]
	bot  string // bot user id

	cur   atomic.Pointer[instance] // nil while down
	known atomic.Uint64            // hooks the last process reported (used while it is down)
	hooks []*hookState             // by pb.Hook

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	swapc  chan swapReq
	first  chan struct{} // closed after the first start attempt
	notify chan func()   // notification hooks, run in order by one worker
	// feedWake is poked when a process is installed or the spec changes
	// (the security feed looks again at once instead of waiting).
	feedWake chan struct{}

	mu        sync.Mutex
	state     string
	lastErr   string
	crashes   []time.Time
	starts    int64
	restarts  int64
	upGauge   prometheus.Gauge
	restartsC prometheus.Counter
}

type swapReq struct {
	ctx   context.Context
	reply chan error
}

// instance is one running plugin process.
type instance struct {
	client   *goplugin.Client // nil for kind: wasm
	wasm     *wasmhost.Module // nil for kind: process
	remote   *plugin.Remote
	hooks    uint64
	contract uint32
	sdk      string
	pid      int
	exited   <-chan struct{}
	fileID   string
	stopping atomic.Bool
	inflight atomic.Int64 // hook calls in progress (a swap lets them finish)
}

func (i *instance) has(h pb.Hook) bool { return i.hooks&(1<<uint(h)) != 0 }

// hookState is one plugin-hook pair: its limits, breaker and counters.
type hookState struct {
	hook    pb.Hook
	name    string
	params  atomic.Pointer[hookParams]
	br      breaker
	calls   atomic.Int64
	errors  atomic.Int64
	timeout atomic.Int64
	// timed and nanos sum the calls that reached the plugin, for AvgMs.
	timed atomic.Int64
	nanos atomic.Int64

	mCalls, mErrors, mTimeouts prometheus.Counter
	mSeconds                   prometheus.Observer
}

type hookParams struct {
	timeout  time.Duration
	policy   Policy
	failures int
	cooldown time.Duration
}

func newManaged(h *Host, spec *Spec) *managed {
	m := &managed{h: h, id: spec.ID, done: make(chan struct{}), swapc: make(chan swapReq),
		first: make(chan struct{}), notify: make(chan func(), 1024), feedWake: make(chan struct{}, 1), state: "starting",
		bot: uuid.NewSHA1(uuid.NameSpaceURL, []byte("unhidra:plugin:"+spec.ID)).String()}
	m.ctx, m.cancel = context.WithCancel(h.ctx)
	m.hooks = make([]*hookState, numHooks)
	mt := h.o.Metrics
	for i := 1; i < numHooks; i++ {
		hs := &hookState{hook: pb.Hook(i), name: HookName(pb.Hook(i))}
		if mt != nil {
			hs.mCalls = mt.PluginCalls.WithLabelValues(m.id, hs.name)
			hs.mErrors = mt.PluginErrors.WithLabelValues(m.id, hs.name)
			hs.mTimeouts = mt.PluginTimeouts.WithLabelValues(m.id, hs.name)
			hs.mSeconds = mt.PluginSeconds.WithLabelValues(m.id, hs.name)
			g := mt.PluginBreaker.WithLabelValues(m.id, hs.name)
			hs.br.onChange = func(s int32) { g.Set(float64(s)) }
		}
		m.hooks[i] = hs
	}
	if mt != nil {
		m.upGauge = mt.PluginUp.WithLabelValues(m.id)
		m.restartsC = mt.PluginRestarts.WithLabelValues(m.id)
	}
	m.apply(spec)
	return m
}

// apply installs a (re)loaded spec: limits, policies and grants take effect
// for the next call.
func (m *managed) apply(spec *Spec) {
	m.spec.Store(spec)
	for i := 1; i < numHooks; i++ {
		m.hooks[i].params.Store(&hookParams{timeout: timeoutFor(spec, pb.Hook(i)), policy: policyFor(spec, pb.Hook(i)),
			failures: spec.Breaker.Failures, cooldown: spec.Breaker.Cooldown})
	}
	m.poke() // grants may have changed
}

// poke tells the security feed to look again at once (a process was
// installed, grants changed).
func (m *managed) poke() {
	select {
	case m.feedWake <- struct{}{}:
	default:
	}
}

func (m *managed) log() *slog.Logger { return m.h.o.Logger.With("plugin", m.id) }

// emit records a lifecycle event of this plugin, acted by the system.
func (m *managed) emit(t secevent.Type, outcome string, details map[string]string) {
	m.h.o.Events.Emit(context.Background(), secevent.Event{Type: t, Actor: secevent.System, Target: m.id, TargetKind: "plugin",
		Outcome: outcome, Details: details})
}

func (m *managed) setState(s, errText string) {
	m.mu.Lock()
	m.state = s
	if errText != "" {
		m.lastErr = errText
	}
	m.mu.Unlock()
	if m.upGauge != nil {
		if s == "running" {
			m.upGauge.Set(1)
		} else {
			m.upGauge.Set(0)
		}
	}
}

// launch starts the supervisor and waits for the first start attempt.
func (m *managed) launch() {
	spec := m.spec.Load()
	if m.h.o.Store != nil {
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		_, err := m.h.o.Store.EnsureBot(ctx, m.bot, "bot:"+m.id)
		cancel()
		if err != nil {
			m.log().Error("plugin bot account", "err", err)
		}
	}
	go m.run()
	go m.notifier()
	if spec.Tick > 0 {
		go m.ticker()
	}
	if m.h.o.Events != nil {
		go m.securityFeed()
	}
	select {
	case <-m.first:
	case <-m.ctx.Done():
	}
}

// run is the supervisor: start, watch, restart with backoff, give up after
// too many crashes in the window, swap on upgrade, stop on cancel.
func (m *managed) run() {
	defer close(m.done)
	firstDone := false
	markFirst := func() {
		if !firstDone {
			firstDone = true
			close(m.first)
		}
	}
	defer markFirst()
	health := time.NewTicker(m.h.o.HealthInterval)
	defer health.Stop()
	for {
		if m.ctx.Err() != nil {
			return
		}
		inst, err := m.start(m.ctx)
		markFirst()
		if err != nil {
			if m.ctx.Err() != nil {
				return
			}
			m.log().Error("plugin failed to start", "err", err)
			m.emit(secevent.PluginCrashed, secevent.Failure, map[string]string{"error": err.Error()})
			if !m.crashed(err) {
				return
			}
			continue
		}
		m.install(inst)
		m.mu.Lock()
		restarts := m.restarts
		m.mu.Unlock()
		m.emit(secevent.PluginStarted, secevent.Success, map[string]string{"pid": strconv.Itoa(inst.pid),
			"kind": m.spec.Load().Kind, "restart": strconv.FormatInt(restarts, 10)})
		failedPings := 0
	watch:
		for {
			select {
			case <-inst.exited:
				m.cur.CompareAndSwap(inst, nil)
				killClient(inst.client) // reap
				if m.ctx.Err() != nil {
					return
				}
				err := fmt.Errorf("plugin process %d exited", inst.pid)
				m.log().Error("plugin crashed", "pid", inst.pid)
				m.emit(secevent.PluginCrashed, secevent.Failure, map[string]string{"pid": strconv.Itoa(inst.pid), "error": err.Error()})
				if !m.crashed(err) {
					return
				}
				break watch
			case r := <-m.swapc:
				next, err := m.start(r.ctx)
				if err != nil {
					r.reply <- err
					continue
				}
				old := inst
				inst = next
				m.install(next)
				r.reply <- nil
				go m.stopInstance(old)
			case <-health.C:
				err := ping(inst, m.h.o.HealthInterval)
				if err == nil {
					failedPings = 0
					continue
				}
				if failedPings++; failedPings == 2 {
					// Unresponsive: no graceful shutdown, it would not answer.
					m.log().Error("plugin failed health checks; killing it", "pid", inst.pid, "err", err)
					if inst.pid > 0 {
						_ = syscall.Kill(inst.pid, syscall.SIGKILL) // exited fires when it is gone
					}
				}
			case <-m.ctx.Done():
				m.cur.CompareAndSwap(inst, nil)
				m.stopInstance(inst)
				m.setState("stopped", "")
				m.emit(secevent.PluginStopped, secevent.Success, nil)
				return
			}
		}
	}
}

// pluginEnv keeps only the environment a program needs to run. The server's
// own settings (database URL with its password, keys) never reach plugins;
// a plugin's settings come from its `config:` in plugins.yaml.
func pluginEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case slices.Contains(passEnv, name), strings.HasPrefix(name, "LC_"):
			out = append(out, kv)
		}
	}
	return out
}

var passEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "GOCOVERDIR", "GORACE"}

// install makes inst the process hooks go to, with closed breakers: calls
// that failed against the process it replaces (a crashed one fails every
// call until its exit is noticed) say nothing about inst, and an open
// breaker would bypass it (no filtering under policy open, refusals under
// closed) for a whole cooldown after it is back.
func (m *managed) install(inst *instance) {
	m.cur.Store(inst)
	for _, hs := range m.hooks[1:] {
		hs.br.reset()
	}
	m.known.Store(inst.hooks)
	m.setState("running", "")
	m.poke()
}

// ping checks the process answers gRPC health checks within d. go-plugin's
// Ping has no deadline of its own, so a frozen process would block it.
func ping(inst *instance, d time.Duration) error {
	if inst.client == nil {
		return nil // in-process (wasm): nothing to lose contact with
	}
	done := make(chan error, 1)
	go func() {
		rpc, err := inst.client.Client()
		if err == nil {
			err = rpc.Ping()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("no health answer within %v", d)
	case <-inst.exited:
		return errors.New("process exited")
	}
}

// crashed records a crash and waits out the backoff. It returns false when
// the plugin is now disabled (too many crashes in the window) or stopping.
func (m *managed) crashed(err error) bool {
	spec := m.spec.Load()
	now := time.Now()
	m.mu.Lock()
	m.crashes = append(m.crashes, now)
	for len(m.crashes) > 0 && now.Sub(m.crashes[0]) > spec.Restart.Window {
		m.crashes = m.crashes[1:]
	}
	n := len(m.crashes)
	m.mu.Unlock()
	if n >= spec.Restart.MaxCrashes {
		m.log().Error("plugin disabled: too many crashes", "crashes", n, "window", spec.Restart.Window)
		m.setState("crashed-disabled", fmt.Sprintf("%v (%d crashes within %v; fix it and reload plugins.yaml)", err, n, spec.Restart.Window))
		m.emit(secevent.PluginCrashDisabled, secevent.Failure, map[string]string{"crashes": strconv.Itoa(n), "error": err.Error()})
		return false
	}
	m.setState("restarting", err.Error())
	// First restart at once (a single crash costs well under a second);
	// then 100ms, 200ms, … capped at 5s.
	var d time.Duration
	if n > 1 {
		d = min(100*time.Millisecond<<(n-2), 5*time.Second)
	}
	select {
	case <-time.After(d):
		return true
	case <-m.ctx.Done():
		return false
	}
}

// countStart counts a start attempt; every one after the first is a restart.
func (m *managed) countStart() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.starts++
	if m.starts > 1 {
		m.restarts++
		if m.restartsC != nil {
			m.restartsC.Inc()
		}
	}
}

// start starts one instance of the plugin with the runtime of its kind.
func (m *managed) start(ctx context.Context) (*instance, error) {
	// A new process or module registers its sign-in buttons afresh.
	m.h.dropLoginMethods(m)
	return runtimes[m.spec.Load().Kind].start(ctx, m)
}

// startProcess launches (or attaches to) a process, handshakes and
// activates it.
func (m *managed) startProcess(ctx context.Context) (*instance, error) {
	spec := m.spec.Load()
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          goplugin.PluginSet{plugin.PluginName: &plugin.GRPCPlugin{}},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger: hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Level: hclog.Warn, DisableTime: true,
			Output: &lineLogger{log: m.log(), level: slog.LevelWarn, stream: "go-plugin"}}),
		Stderr:       &lineLogger{log: m.log(), level: slog.LevelInfo, stream: "stderr"},
		SyncStdout:   &lineLogger{log: m.log(), level: slog.LevelInfo, stream: "stdout"},
		SyncStderr:   &lineLogger{log: m.log(), level: slog.LevelInfo, stream: "stderr"},
		StartTimeout: 10 * time.Second,
		// Static flow-control windows turn off gRPC's bandwidth probing,
		// which otherwise adds PING frames (and wake-ups) to hook calls.
		GRPCDialOptions: []grpc.DialOption{grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(1 << 20)},
	}
	var fileID string
	if rc := m.h.o.Reattach[m.id]; rc != nil {
		cfg.Reattach = rc
	} else {
		var cmd *exec.Cmd
		if spec.Builtin != "" {
			cmd = exec.Command(m.h.o.Executable, "plugin", spec.Builtin)
		} else {
			path, err := exec.LookPath(spec.Command[0])
			if err != nil {
				return nil, fmt.Errorf("command %q: %w", spec.Command[0], err)
			}
			cmd = exec.Command(path, spec.Command[1:]...)
			fileID = fileIdentity(path)
			if spec.SHA256 != nil {
				cfg.SecureConfig = &goplugin.SecureConfig{Checksum: spec.SHA256, Hash: sha256.New()}
			}
		}
		cmd.Env = append(pluginEnv(os.Environ()), "UNHIDRA_PLUGIN_ID="+m.id)
		dieWithHost(cmd)
		cfg.Cmd = cmd
		cfg.SkipHostEnv = true
	}
	m.countStart()
	client := goplugin.NewClient(cfg)
	inst, err := m.connect(ctx, client, spec)
	if err != nil {
		killClient(client)
		return nil, err
	}
	inst.fileID = fileID
	return inst, nil
}

func (m *managed) connect(ctx context.Context, client *goplugin.Client, spec *Spec) (*instance, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense: %w", err)
	}
	remote, ok := raw.(*plugin.Remote)
	if !ok {
		return nil, fmt.Errorf("dispense: unexpected %T", raw)
	}
	inst := &instance{client: client, remote: remote, exited: remote.Exited}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	hs, err := remote.Handshake(hctx, &pb.HandshakeRequest{HostContractVersion: plugin.ContractVersion})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if hs.ContractVersion == 0 {
		return nil, errors.New("handshake: the plugin reported no contract version")
	}
	for _, hk := range hs.Hooks {
		if hk > 0 && int(hk) < numHooks { // hooks from a newer contract are ignored
			inst.hooks |= 1 << uint(hk)
		}
	}
	inst.contract, inst.sdk = hs.ContractVersion, hs.Sdk

	// Serve the host API to this process over the broker.
	id := remote.Broker.NextId()
	go remote.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(append(opts, grpc.ChainUnaryInterceptor(m.authorize))...)
		pb.RegisterHostServer(s, &hostAPI{m: m})
		return s
	})
	actx, cancel := context.WithTimeout(ctx, timeoutFor(spec, pb.Hook_HOOK_ON_ACTIVATE))
	defer cancel()
	_, err = remote.OnActivate(actx, &pb.ActivateRequest{PluginId: m.id, ConfigJson: spec.Config, HostBrokerId: id,
		HostContractVersion: plugin.ContractVersion, BotUserId: m.bot})
	if err != nil {
		return nil, fmt.Errorf("OnActivate: %w", err)
	}
	m.log().Info("plugin running", "pid", inst.pid, "contract", inst.contract, "hooks", hookList(inst.hooks))
	return inst, nil
}

// stopInstance deactivates (when the plugin implements OnDeactivate) and
// stops a process. In-flight calls get the longest hook deadline to finish.
func (m *managed) stopInstance(inst *instance) {
	if inst == nil || inst.stopping.Swap(true) {
		return
	}
	// Hooks already switched away from inst; let its calls in flight finish
	// (each is bounded by its own deadline).
	for deadline := time.Now().Add(30 * time.Second); inst.inflight.Load() > 0 && time.Now().Before(deadline); {
		select {
		case <-inst.exited:
		case <-time.After(5 * time.Millisecond):
			continue
		}
		break
	}
	if inst.has(pb.Hook_HOOK_ON_DEACTIVATE) {
		ctx, cancel := context.WithTimeout(context.Background(), timeoutFor(m.spec.Load(), pb.Hook_HOOK_ON_DEACTIVATE))
		if _, err := inst.remote.OnDeactivate(ctx, &pb.Empty{}); err != nil {
			m.log().Warn("OnDeactivate failed", "err", err)
		}
		cancel()
	}
	if inst.wasm != nil {
		_ = inst.wasm.Close(context.Background())
		return
	}
	killClient(inst.client)
}

// killClient stops a plugin process: go-plugin's graceful Kill first, and
// SIGKILL when that does not finish (a frozen process never answers the
// shutdown request, and go-plugin would wait for it forever).
func killClient(c *goplugin.Client) {
	done := make(chan struct{})
	go func() { c.Kill(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(3 * time.Second):
	}
	if rc := c.ReattachConfig(); rc != nil && rc.Pid > 0 {
		_ = syscall.Kill(rc.Pid, syscall.SIGKILL)
	}
	<-done
}

// swap starts a new process with the current spec, switches hooks to it and
// stops the old one. If the new one fails to start, the old keeps running.
func (m *managed) swap(ctx context.Context) error {
	r := swapReq{ctx: ctx, reply: make(chan error, 1)}
	select {
	case m.swapc <- r:
		return <-r.reply
	case <-m.done:
		return errors.New("plugin is not running")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reconfigure hands a changed config to OnConfigurationChange, or swaps the
// process when the plugin does not implement it.
func (m *managed) reconfigure(ctx context.Context) error {
	inst := m.cur.Load()
	if inst == nil {
		return nil // the next start reads the new config
	}
	if !inst.has(pb.Hook_HOOK_ON_CONFIGURATION_CHANGE) {
		return m.swap(ctx)
	}
	hs := m.hooks[pb.Hook_HOOK_ON_CONFIGURATION_CHANGE]
	return m.call(ctx, hs, func(ctx context.Context, c *plugin.Remote) error {
		_, err := c.OnConfigurationChange(ctx, &pb.ConfigurationChangeRequest{ConfigJson: m.spec.Load().Config})
		return err
	})
}

// finished reports whether the supervisor gave up (crashed-disabled).
func (m *managed) finished() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stop ends the supervisor (deactivating the process) and waits for it.
func (m *managed) stop() {
	m.cancel()
	<-m.done
}

// binaryChanged reports whether the running program's file was replaced
// since it started (an upgrade in place).
func (m *managed) binaryChanged() bool {
	inst := m.cur.Load()
	spec := m.spec.Load()
	if inst == nil || inst.fileID == "" {
		return false
	}
	path := runtimes[spec.Kind].program(spec)
	return path != "" && fileIdentity(path) != inst.fileID
}

func fileIdentity(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
}

// implements reports whether the plugin implements hook: per the running
// process, or per the last handshake while it is down (so its policy still
// applies to the hooks it had).
// A hook that needs a grant (plugin.proto) counts only while the plugin
// holds it.
func (m *managed) implements(h pb.Hook) bool {
	var has bool
	if inst := m.cur.Load(); inst != nil {
		has = inst.has(h)
	} else {
		has = m.known.Load()&(1<<uint(h)) != 0
	}
	if has {
		if hs, ok := pb.HookSpecOf(h); ok && hs.Grant != "" {
			return m.granted(m.ctx, hs.Grant)
		}
	}
	return has
}

// notifier runs notification hooks one at a time, in the order they were
// queued, so a plugin sees events in commit order.
func (m *managed) notifier() {
	for {
		select {
		case f := <-m.notify:
			f()
		case <-m.ctx.Done():
			return
		}
	}
}

func (m *managed) ticker() {
	for {
		spec := m.spec.Load()
		t := time.NewTimer(spec.Tick)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case now := <-t.C:
			if m.implements(pb.Hook_HOOK_ON_TICK) {
				_ = m.call(m.ctx, m.hooks[pb.Hook_HOOK_ON_TICK], func(ctx context.Context, c *plugin.Remote) error {
					_, err := c.OnTick(ctx, &pb.TickRequest{Now: now.UnixMilli()})
					return err
				})
			}
		}
	}
}

func (m *managed) status() Status {
	spec := m.spec.Load()
	m.mu.Lock()
	st := Status{ID: m.id, Kind: spec.Kind, Enabled: true, State: m.state, LastError: m.lastErr,
		Starts: m.starts, Restarts: m.restarts, RecentCrashes: len(m.crashes), Grants: orEmpty(spec.Grants),
		Config: MaskConfig(spec.Config)}
	m.mu.Unlock()
	if inst := m.cur.Load(); inst != nil {
		st.PID, st.ContractVersion, st.SDK = inst.pid, inst.contract, inst.sdk
		if inst.wasm != nil {
			ws := inst.wasm.Stats()
			st.WASM = &WASMStatus{Instantiations: ws.Instantiations.Load(), Discards: ws.Discards.Load(), Traps: ws.Traps.Load(),
				Timeouts: ws.Timeouts.Load(), Malformed: ws.Malformed.Load(), Denied: ws.Denied.Load()}
		}
	}
	known := m.known.Load()
	st.Hooks = hookList(known)
	st.Commands = orEmpty(m.h.commandsOf(m))
	st.HookStats = []HookStatus{}
	for i := 1; i < numHooks; i++ {
		if known&(1<<uint(i)) == 0 {
			continue
		}
		hs := m.hooks[i]
		p := hs.params.Load()
		var avg float64
		if n := hs.timed.Load(); n > 0 {
			avg = float64(hs.nanos.Load()) / float64(n) / 1e6
		}
		st.HookStats = append(st.HookStats, HookStatus{Hook: hs.name, Calls: hs.calls.Load(), Errors: hs.errors.Load(),
			Timeouts: hs.timeout.Load(), Breaker: hs.br.name(), Policy: p.policy, TimeoutMs: p.timeout.Milliseconds(), AvgMs: avg})
	}
	return st
}

func hookList(bits uint64) []string {
	out := []string{}
	for i := 1; i < numHooks; i++ {
		if bits&(1<<uint(i)) != 0 {
			out = append(out, HookName(pb.Hook(i)))
		}
	}
	return out
}

// lineLogger turns a plugin's output into log lines tagged with the plugin.
type lineLogger struct {
	log    *slog.Logger
	level  slog.Level
	stream string
	mu     sync.Mutex
	buf    []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.buf[:i]), "\r")
		l.buf = l.buf[i+1:]
		if line != "" {
			l.emit(line)
		}
	}
	if len(l.buf) > 64<<10 { // a runaway line without newline
		l.log.Log(context.Background(), l.level, string(l.buf), "stream", l.stream)
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

var _ io.Writer = (*lineLogger)(nil)

// emit logs one line. go-plugin's own messages from inside the plugin are
// hclog JSON ({"@level":…,"@message":…}); they keep their level and fields.
func (l *lineLogger) emit(line string) {
	if strings.HasPrefix(line, `{"@`) {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil {
			lvl := l.level
			switch entry["@level"] {
			case "trace", "debug":
				lvl = slog.LevelDebug
			case "warn":
				lvl = slog.LevelWarn
			case "error":
				lvl = slog.LevelError
			}
			msg, _ := entry["@message"].(string)
			args := []any{"stream", l.stream}
			for k, v := range entry {
				if !strings.HasPrefix(k, "@") {
					args = append(args, k, v)
				}
			}
			l.log.Log(context.Background(), lvl, msg, args...)
			return
		}
	}
	l.log.Log(context.Background(), l.level, line, "stream", l.stream)
}
