package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/unhidra/unhidra/core/pluginhost/wasmhost"
	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

// WASM plugins run in process (core/pluginhost/wasmhost). To the rest of the
// host a module looks like a process plugin: wasmClient implements the same
// pb.PluginClient the gRPC connection does, so dispatch order, deadlines,
// failure policies, breakers, metrics, reload and the admin API serve both
// kinds with one code path.

// startWasm builds (when needed), verifies and loads a module and wraps it
// as an instance.
func (m *managed) startWasm(ctx context.Context) (*instance, error) {
	spec := m.spec.Load()
	w := spec.WASM
	if w.Source != "" {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		built, err := wasmhost.EnsureBuilt(bctx, w.Source, w.Path)
		cancel()
		if err != nil {
			if _, statErr := os.Stat(w.Path); statErr != nil {
				return nil, err
			}
			// A stale module still runs; say why it was not rebuilt.
			m.log().Warn("could not rebuild wasm module; loading the existing file", "err", err)
		} else if built {
			m.log().Info("built wasm module", "source", w.Source, "wasm", w.Path)
		}
	}
	code, err := os.ReadFile(w.Path)
	if err != nil {
		return nil, fmt.Errorf("read wasm module: %w", err)
	}
	if spec.SHA256 != nil {
		if sum := sha256.Sum256(code); !bytes.Equal(sum[:], spec.SHA256) {
			return nil, fmt.Errorf("wasm module %s: checksum mismatch (sha256 %x, plugins.yaml says %x)", w.Path, sum, spec.SHA256)
		}
	}
	eng, err := m.h.wasmEngine()
	if err != nil {
		return nil, err
	}
	g := wasmhost.Grants{KV: m.granted(ctx, "kv"), HTTPAllowNets: w.HTTPAllowNets}
	if m.granted(ctx, "messages.post") {
		g.Post = w.PostRooms
		if len(g.Post) == 0 {
			g.Post = []string{"*"}
		}
	}
	if m.granted(ctx, "http") {
		g.HTTP = w.HTTPAllow
	}
	m.countStart()
	mod, err := eng.Load(ctx, wasmhost.ModuleOptions{ID: m.id, Wasm: code, Config: spec.Config, Grants: g,
		Host: wasmHostAPI{m: m}, MemoryLimitMB: uint32(w.MemoryMB), MaxInstances: w.Instances,
		RecycleAfter: w.RecycleAfter, Logger: m.h.o.Logger,
		Stdout: &lineLogger{log: m.log(), level: slog.LevelInfo, stream: "stdout"},
		Stderr: &lineLogger{log: m.log(), level: slog.LevelWarn, stream: "stderr"}, OnDenied: func(capability string) {
			if mt := m.h.o.Metrics; mt != nil {
				mt.PluginDenied.WithLabelValues(m.id, capability).Inc()
			}
		}})
	if err != nil {
		return nil, err
	}
	wc := &wasmClient{mod: mod, m: m}
	inst := &instance{wasm: mod, remote: &plugin.Remote{PluginClient: pb.NewPluginClient(wc), Conn: wc},
		exited: make(chan struct{}), contract: plugin.ContractVersion, sdk: fmt.Sprintf("wasm-abi-v%d", unhidra.ABIVersion),
		fileID: fileIdentity(w.Path)}
	d := mod.Description()
	for _, h := range contractHooks(d) {
		inst.hooks |= 1 << uint(h)
	}
	switch {
	case len(d.Commands) == 0:
	case !m.granted(ctx, "commands"):
		m.log().Warn("wasm module declares commands but has no commands grant; not registering them", "commands", len(d.Commands))
	default:
		api := &hostAPI{m: m} // the same validation and registration as process plugins
		for _, c := range d.Commands {
			if _, err := api.RegisterCommand(ctx, &pb.Command{Trigger: c.Trigger, Description: c.Description, Hint: c.Hint}); err != nil {
				_ = mod.Close(ctx)
				return nil, plainErr(err)
			}
		}
	}
	m.log().Info("wasm plugin running", "hooks", hookList(inst.hooks), "commands", len(d.Commands))
	return inst, nil
}

// contractHooks maps the hooks a module declared to contract hooks the
// host dispatches to it: every hook but OnActivate, which runs inside
// wasmhost for every new instance, and OnConfigurationChange (a config
// change reloads the module, whose config is fixed per load).
func contractHooks(d unhidra.Description) []pb.Hook {
	var out []pb.Hook
	for _, name := range d.Hooks {
		spec, ok := pb.HookByName(name)
		if !ok || spec.Hook == pb.Hook_HOOK_ON_ACTIVATE || spec.Hook == pb.Hook_HOOK_ON_CONFIGURATION_CHANGE || spec.Request == nil {
			continue
		}
		out = append(out, spec.Hook)
	}
	return out
}

// granted asks the Authorizer (Casbin, with the plugin's plugins.yaml grants)
// whether the plugin holds capability.
func (m *managed) granted(ctx context.Context, capability string) bool {
	return m.h.o.Authorizer.AuthorizePlugin(ctx, AuthzRequest{Plugin: m.id, Capability: capability, Grants: m.spec.Load().Grants}) == nil
}

// wasmEngine returns the host's shared engine (one compilation cache).
func (h *Host) wasmEngine() (*wasmhost.Engine, error) {
	h.wasmOnce.Do(func() {
		h.wasm, h.wasmErr = wasmhost.NewEngine(wasmhost.EngineOptions{CacheDir: h.o.WASMCacheDir, Logger: h.o.Logger})
	})
	return h.wasm, h.wasmErr
}

// wasmHostAPI gives modules the same store-backed KV and bot posting as the
// gRPC host API (hostapi.go).
type wasmHostAPI struct{ m *managed }

func (a wasmHostAPI) api() *hostAPI { return &hostAPI{m: a.m} }

func (a wasmHostAPI) KVGet(ctx context.Context, _ string, key string) ([]byte, bool, error) {
	r, err := a.api().KVGet(ctx, &pb.KVGetRequest{Key: key})
	if err != nil {
		return nil, false, plainErr(err)
	}
	return r.Value, r.Found, nil
}

func (a wasmHostAPI) KVSet(ctx context.Context, _ string, key string, val []byte, ttl time.Duration) error {
	_, err := a.api().KVSet(ctx, &pb.KVSetRequest{Key: key, Value: val, TtlMs: ttl.Milliseconds()})
	return plainErr(err)
}

func (a wasmHostAPI) KVCompareAndSet(ctx context.Context, _ string, key string, old []byte, oldPresent bool, nv []byte, ttl time.Duration) (bool, error) {
	r, err := a.api().KVCompareAndSet(ctx, &pb.KVCompareAndSetRequest{Key: key, OldValue: old, OldAbsent: !oldPresent, NewValue: nv, TtlMs: ttl.Milliseconds()})
	if err != nil {
		return false, plainErr(err)
	}
	return r.Swapped, nil
}

func (a wasmHostAPI) KVDelete(ctx context.Context, _ string, key string) error {
	_, err := a.api().KVDelete(ctx, &pb.KVDeleteRequest{Key: key})
	return plainErr(err)
}

func (a wasmHostAPI) KVList(ctx context.Context, _ string, prefix string) ([]wasmhost.KVEntry, error) {
	r, err := a.api().KVList(ctx, &pb.KVListRequest{Prefix: prefix})
	if err != nil {
		return nil, plainErr(err)
	}
	out := make([]wasmhost.KVEntry, len(r.Entries))
	for i, e := range r.Entries {
		out[i] = wasmhost.KVEntry{Key: e.Key, Value: e.Value}
	}
	return out, nil
}

func (a wasmHostAPI) Post(ctx context.Context, _ string, room, text string) (string, error) {
	msg, err := a.api().PostMessage(ctx, &pb.PostMessageRequest{Room: room, Text: text})
	if err != nil {
		return "", plainErr(err)
	}
	return msg.Id, nil
}

// hostMethods are the Host service's rpcs by name, for host_call.
var hostMethods = func() map[string]grpc.MethodDesc {
	out := map[string]grpc.MethodDesc{}
	for _, md := range pb.Host_ServiceDesc.Methods {
		out[md.MethodName] = md
	}
	return out
}()

// Call implements wasmhost.Host: any Host rpc, by name, with a protojson
// request and answer (proto field names), through the same handler and the
// same grant check (managed.authorize) as a process plugin's call.
func (a wasmHostAPI) Call(ctx context.Context, _ string, method string, req []byte) ([]byte, error) {
	md, ok := hostMethods[method]
	if !ok {
		return nil, fmt.Errorf("UNIMPLEMENTED: no host call %q (see the Host service in plugin.proto)", method)
	}
	dec := func(v any) error {
		if len(bytes.TrimSpace(req)) == 0 {
			return nil
		}
		if err := protojson.Unmarshal(req, v.(proto.Message)); err != nil {
			return status.Errorf(codes.InvalidArgument, "%s request: %v", method, err)
		}
		return nil
	}
	out, err := md.Handler(a.api(), ctx, dec, a.m.authorize)
	if err != nil {
		st, _ := status.FromError(err)
		msg := codeName(st.Code()) + ": " + st.Message()
		if st.Code() == codes.PermissionDenied {
			return nil, fmt.Errorf("%w: %s", wasmhost.ErrDenied, st.Message())
		}
		return nil, errors.New(msg)
	}
	return wasmJSON.Marshal(out.(proto.Message))
}

// codeName is a gRPC code as plugin.proto and docs name it
// (PERMISSION_DENIED).
func codeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "OK"
	case codes.Canceled:
		return "CANCELLED"
	}
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// plainErr turns a gRPC status into a plain error message for a module.
func plainErr(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return errors.New(st.Message())
	}
	return err
}

// wasmClient is a module seen through the process-plugin contract: a
// grpc.ClientConnInterface whose Invoke calls the module's export, so the
// typed pb.PluginClient and the host's table-driven dispatch both work on it.
// Every hook's request and answer travel as protojson with the proto's field
// names (ABI v2, docs/wasm-abi.md).
type wasmClient struct {
	mod *wasmhost.Module
	m   *managed
}

var _ grpc.ClientConnInterface = (*wasmClient)(nil)

var (
	wasmJSON     = protojson.MarshalOptions{UseProtoNames: true}
	wasmJSONRead = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// Invoke implements grpc.ClientConnInterface.
func (c *wasmClient) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	switch method {
	case pb.Plugin_Handshake_FullMethodName:
		proto.Merge(reply.(proto.Message), &pb.HandshakeResponse{ContractVersion: plugin.ContractVersion,
			Sdk: fmt.Sprintf("wasm-abi-v%d", unhidra.ABIVersion), Hooks: contractHooks(c.mod.Description())})
		return nil
	case pb.Plugin_OnActivate_FullMethodName:
		return nil // each instance activates itself in wasmhost
	}
	spec, ok := pb.HookByMethod(method)
	if !ok || spec.Request == nil || spec.Hook == pb.Hook_HOOK_ON_CONFIGURATION_CHANGE || !c.mod.Implements(spec.Name) {
		return status.Errorf(codes.Unimplemented, "%s is not available to this wasm module", method)
	}
	in, err := wasmJSON.Marshal(args.(proto.Message))
	if err != nil {
		return err
	}
	raw, err := c.mod.Call(ctx, spec.Name, in)
	if he := (*wasmhost.HookError)(nil); errors.As(err, &he) {
		// The module's own error, as the process SDK reports one: its text
		// reaches the user where a hook's error does (ExecuteCommand).
		return status.Error(codes.Unknown, he.Msg)
	}
	if err != nil {
		return err // trap, timeout, malformed: the host's generic failure
	}
	if len(raw) == 0 {
		return nil
	}
	if err := wasmJSONRead.Unmarshal(raw, reply.(proto.Message)); err != nil {
		return fmt.Errorf("%w: %s answer: %v", wasmhost.ErrMalformed, spec.Name, err)
	}
	return nil
}

// NewStream implements grpc.ClientConnInterface: no streaming hook (ServeHTTP)
// runs in a module.
func (c *wasmClient) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "wasm modules do not serve HTTP")
}
