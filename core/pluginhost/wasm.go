package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
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

// wasmHooks maps ABI hook names to contract hooks.
var wasmHooks = map[string]pb.Hook{
	unhidra.HookOnDeactivate:          pb.Hook_HOOK_ON_DEACTIVATE,
	unhidra.HookMessageWillBePosted:   pb.Hook_HOOK_MESSAGE_WILL_BE_POSTED,
	unhidra.HookMessageHasBeenPosted:  pb.Hook_HOOK_MESSAGE_HAS_BEEN_POSTED,
	unhidra.HookMessageWillBeUpdated:  pb.Hook_HOOK_MESSAGE_WILL_BE_UPDATED,
	unhidra.HookMessageHasBeenUpdated: pb.Hook_HOOK_MESSAGE_HAS_BEEN_UPDATED,
	unhidra.HookMessageHasBeenDeleted: pb.Hook_HOOK_MESSAGE_HAS_BEEN_DELETED,
	unhidra.HookUserWillLogIn:         pb.Hook_HOOK_USER_WILL_LOG_IN,
	unhidra.HookUserHasLoggedIn:       pb.Hook_HOOK_USER_HAS_LOGGED_IN,
	unhidra.HookUserHasJoinedRoom:     pb.Hook_HOOK_USER_HAS_JOINED_ROOM,
	unhidra.HookUserHasLeftRoom:       pb.Hook_HOOK_USER_HAS_LEFT_ROOM,
	unhidra.HookOnWebSocketConnect:    pb.Hook_HOOK_ON_WEB_SOCKET_CONNECT,
	unhidra.HookOnWebSocketDisconnect: pb.Hook_HOOK_ON_WEB_SOCKET_DISCONNECT,
	unhidra.HookExecuteCommand:        pb.Hook_HOOK_EXECUTE_COMMAND,
	unhidra.HookOnTick:                pb.Hook_HOOK_ON_TICK,
	// OnActivate runs inside wasmhost for every new instance, and a config
	// change reloads the module (its config is fixed per load), so neither
	// OnActivate nor OnConfigurationChange is dispatched from here.
}

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

// contractHooks maps the hooks a module declared to contract hooks (those
// the host dispatches): the ABI v1 names of wasmHooks, and any other unary,
// non-lifecycle hook by its rpc name (its payload travels as protojson, see
// wasmClient.Invoke).
func contractHooks(d unhidra.Description) []pb.Hook {
	var out []pb.Hook
	for _, name := range d.Hooks {
		if h, ok := wasmHooks[name]; ok {
			out = append(out, h)
		} else if hs, ok := pb.HookByName(name); ok && hs.Request != nil && hs.Kind != pb.HookKind_HOOK_KIND_LIFECYCLE {
			out = append(out, hs.Hook)
		}
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
// Hooks of ABI v1 keep their hand-shaped payloads (wasmV1 below); every
// other hook's request and answer travel as protojson with the proto's field
// names (docs/wasm-abi.md).
type wasmClient struct {
	mod *wasmhost.Module
	m   *managed
}

var _ grpc.ClientConnInterface = (*wasmClient)(nil)

// wasmJSON encodes requests for hooks without a v1 payload shape.
var wasmJSON = protojson.MarshalOptions{UseProtoNames: true}

// Invoke implements grpc.ClientConnInterface.
func (c *wasmClient) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	if f := wasmV1[method]; f != nil {
		out, err := f(ctx, c, args)
		if err != nil {
			return err
		}
		proto.Reset(reply.(proto.Message))
		proto.Merge(reply.(proto.Message), out)
		return nil
	}
	spec, ok := pb.HookByMethod(method)
	if !ok || spec.Kind == pb.HookKind_HOOK_KIND_LIFECYCLE {
		return status.Errorf(codes.Unimplemented, "%s is not available to wasm modules", method)
	}
	in, err := wasmJSON.Marshal(args.(proto.Message))
	if err != nil {
		return err
	}
	raw, err := c.mod.Call(ctx, spec.Name, in)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return nil
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, reply.(proto.Message)); err != nil {
		return fmt.Errorf("%w: %s answer: %v", wasmhost.ErrMalformed, spec.Name, err)
	}
	return nil
}

// NewStream implements grpc.ClientConnInterface: no streaming hook (ServeHTTP)
// runs in a module.
func (c *wasmClient) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "wasm modules do not serve HTTP")
}

// v1 adapts a typed ABI v1 hook to Invoke.
func v1[Req, Resp proto.Message](f func(*wasmClient, context.Context, Req) (Resp, error)) func(context.Context, *wasmClient, any) (proto.Message, error) {
	return func(ctx context.Context, c *wasmClient, in any) (proto.Message, error) {
		return f(c, ctx, in.(Req))
	}
}

// wasmV1 are the hooks whose payloads ABI v1 shaped by hand.
var wasmV1 = map[string]func(context.Context, *wasmClient, any) (proto.Message, error){
	pb.Plugin_Handshake_FullMethodName:             v1((*wasmClient).Handshake),
	pb.Plugin_OnActivate_FullMethodName:            v1((*wasmClient).OnActivate),
	pb.Plugin_OnDeactivate_FullMethodName:          v1((*wasmClient).OnDeactivate),
	pb.Plugin_OnConfigurationChange_FullMethodName: v1((*wasmClient).OnConfigurationChange),
	pb.Plugin_MessageWillBePosted_FullMethodName:   v1((*wasmClient).MessageWillBePosted),
	pb.Plugin_MessageHasBeenPosted_FullMethodName:  v1((*wasmClient).MessageHasBeenPosted),
	pb.Plugin_MessageWillBeUpdated_FullMethodName:  v1((*wasmClient).MessageWillBeUpdated),
	pb.Plugin_MessageHasBeenUpdated_FullMethodName: v1((*wasmClient).MessageHasBeenUpdated),
	pb.Plugin_MessageHasBeenDeleted_FullMethodName: v1((*wasmClient).MessageHasBeenDeleted),
	pb.Plugin_UserWillLogIn_FullMethodName:         v1((*wasmClient).UserWillLogIn),
	pb.Plugin_UserHasLoggedIn_FullMethodName:       v1((*wasmClient).UserHasLoggedIn),
	pb.Plugin_UserHasJoinedRoom_FullMethodName:     v1((*wasmClient).UserHasJoinedRoom),
	pb.Plugin_UserHasLeftRoom_FullMethodName:       v1((*wasmClient).UserHasLeftRoom),
	pb.Plugin_OnWebSocketConnect_FullMethodName:    v1((*wasmClient).OnWebSocketConnect),
	pb.Plugin_OnWebSocketDisconnect_FullMethodName: v1((*wasmClient).OnWebSocketDisconnect),
	pb.Plugin_ExecuteCommand_FullMethodName:        v1((*wasmClient).ExecuteCommand),
	pb.Plugin_OnTick_FullMethodName:                v1((*wasmClient).OnTick),
}

func (c *wasmClient) call(ctx context.Context, hook string, in any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	raw, err := c.mod.Call(ctx, hook, b)
	if err != nil {
		return err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: %s answer: %v", wasmhost.ErrMalformed, hook, err)
		}
	}
	return nil
}

func wasmPost(msg *pb.Message) unhidra.Post {
	if msg == nil {
		return unhidra.Post{}
	}
	return unhidra.Post{ID: msg.Id, Room: msg.Room, Sender: msg.Sender, Text: msg.Text, Thread: msg.Thread,
		Meta: json.RawMessage(msg.MetaJson), Seq: msg.Seq, TS: msg.Ts}
}

func verdict(d unhidra.PostDecision) *pb.MessageVerdict {
	switch {
	case d.Reject != "":
		return &pb.MessageVerdict{Action: pb.Action_ACTION_REJECT, Reason: d.Reject}
	case d.Post != nil:
		return &pb.MessageVerdict{Action: pb.Action_ACTION_MODIFY, Text: d.Post.Text, MetaJson: d.Post.Meta}
	}
	return &pb.MessageVerdict{Action: pb.Action_ACTION_ALLOW}
}

func (c *wasmClient) Handshake(context.Context, *pb.HandshakeRequest) (*pb.HandshakeResponse, error) {
	return &pb.HandshakeResponse{ContractVersion: plugin.ContractVersion, Sdk: fmt.Sprintf("wasm-abi-v%d", unhidra.ABIVersion),
		Hooks: contractHooks(c.mod.Description())}, nil
}

func (c *wasmClient) OnActivate(context.Context, *pb.ActivateRequest) (*pb.Empty, error) {
	return &pb.Empty{}, nil // each instance activates itself in wasmhost
}

func (c *wasmClient) OnDeactivate(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookOnDeactivate, struct{}{}, nil)
}

func (c *wasmClient) OnConfigurationChange(context.Context, *pb.ConfigurationChangeRequest) (*pb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "a wasm module reloads on config change")
}

func (c *wasmClient) MessageWillBePosted(ctx context.Context, in *pb.MessageWillBePostedRequest) (*pb.MessageVerdict, error) {
	var d unhidra.PostDecision
	if err := c.call(ctx, unhidra.HookMessageWillBePosted, wasmPost(in.Message), &d); err != nil {
		return nil, err
	}
	return verdict(d), nil
}

func (c *wasmClient) MessageHasBeenPosted(ctx context.Context, in *pb.MessageEvent) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookMessageHasBeenPosted, wasmPost(in.Message), nil)
}

func (c *wasmClient) MessageWillBeUpdated(ctx context.Context, in *pb.MessageWillBeUpdatedRequest) (*pb.MessageVerdict, error) {
	var d unhidra.PostDecision
	p := unhidra.Post{ID: in.Id, Room: in.Room, Sender: in.Editor, Text: in.NewText}
	if err := c.call(ctx, unhidra.HookMessageWillBeUpdated, p, &d); err != nil {
		return nil, err
	}
	return verdict(d), nil
}

func (c *wasmClient) MessageHasBeenUpdated(ctx context.Context, in *pb.MessageEvent) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookMessageHasBeenUpdated, wasmPost(in.Message), nil)
}

func (c *wasmClient) MessageHasBeenDeleted(ctx context.Context, in *pb.MessageEvent) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookMessageHasBeenDeleted, wasmPost(in.Message), nil)
}

func (c *wasmClient) UserWillLogIn(ctx context.Context, in *pb.UserEvent) (*pb.MessageVerdict, error) {
	var d unhidra.LoginDecision
	if err := c.call(ctx, unhidra.HookUserWillLogIn, unhidra.UserEvent{User: in.UserId, Username: in.Username, Device: in.Device}, &d); err != nil {
		return nil, err
	}
	if d.Reject != "" {
		return &pb.MessageVerdict{Action: pb.Action_ACTION_REJECT, Reason: d.Reject}, nil
	}
	return &pb.MessageVerdict{Action: pb.Action_ACTION_ALLOW}, nil
}

func (c *wasmClient) UserHasLoggedIn(ctx context.Context, in *pb.UserEvent) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookUserHasLoggedIn, unhidra.UserEvent{User: in.UserId, Username: in.Username, Device: in.Device}, nil)
}

func wasmMembership(in *pb.RoomEvent) unhidra.Membership {
	return unhidra.Membership{Room: in.Room, User: in.UserId, Actor: in.Actor, Reason: in.Reason.String(), Role: in.Role}
}

func (c *wasmClient) UserHasJoinedRoom(ctx context.Context, in *pb.RoomEvent) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookUserHasJoinedRoom, wasmMembership(in), nil)
}

func (c *wasmClient) UserHasLeftRoom(ctx context.Context, in *pb.RoomEvent) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookUserHasLeftRoom, wasmMembership(in), nil)
}

func (c *wasmClient) OnWebSocketConnect(ctx context.Context, in *pb.ConnectionEvent) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookOnWebSocketConnect, unhidra.ConnectionEvent{User: in.UserId, Session: in.SessionId}, nil)
}

func (c *wasmClient) OnWebSocketDisconnect(ctx context.Context, in *pb.ConnectionEvent) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookOnWebSocketDisconnect, unhidra.ConnectionEvent{User: in.UserId, Session: in.SessionId}, nil)
}

func (c *wasmClient) ExecuteCommand(ctx context.Context, in *pb.CommandRequest) (*pb.CommandResponse, error) {
	args := strings.Fields(in.Args)
	if args == nil {
		args = []string{}
	}
	raw := "/" + in.Trigger
	if in.Args != "" {
		raw += " " + in.Args
	}
	var r unhidra.CommandResponse
	if err := c.call(ctx, unhidra.HookExecuteCommand, unhidra.CommandArgs{Command: in.Trigger, Args: args, Raw: raw,
		Room: in.Room, User: in.UserId}, &r); err != nil {
		return nil, err
	}
	out := &pb.CommandResponse{Text: r.Text}
	if r.InRoom {
		out.Visibility = pb.Visibility_VISIBILITY_IN_ROOM
	}
	return out, nil
}

func (c *wasmClient) OnTick(ctx context.Context, in *pb.TickRequest) (*pb.Empty, error) {
	return &pb.Empty{}, c.call(ctx, unhidra.HookOnTick, unhidra.Tick{Now: in.Now}, nil)
}
