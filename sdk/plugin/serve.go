package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// Handshake is what host and plugin check before talking; a process that
// does not present it is not an Unhidra plugin. ProtocolVersion is the
// transport version (go-plugin + gRPC); the contract version is negotiated in
// the Handshake RPC.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "UNHIDRA_PLUGIN",
	MagicCookieValue: "7f3c1e8a-unhidra-process-plugin",
}

// PluginName is the go-plugin plugin-set key both sides use.
const PluginName = "unhidra"

// DebugEnv, when set to 1, makes Serve run without a host: it listens,
// prints a reattach line (ReattachPrefix + JSON) on stdout and waits for a
// host started with UNHIDRA_PLUGIN_REATTACH to attach (see docs/plugins.md).
const DebugEnv = "UNHIDRA_PLUGIN_DEBUG"

// ReattachPrefix starts the line Serve prints in debug mode.
const ReattachPrefix = "UNHIDRA_PLUGIN_REATTACH="

// ContractVersion is the contract version this SDK implements.
const ContractVersion = uint32(pb.Version_CONTRACT_VERSION)

// GRPCPlugin adapts the contract to go-plugin for both sides. The plugin
// side sets Impl; the host side gets a *Remote from GRPCClient.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl any
}

// Remote is the host side of a connected plugin process.
type Remote struct {
	pb.PluginClient
	// Conn carries any hook by its gRPC method name (see pb.HookSpec), for
	// callers that dispatch from the contract's declaration.
	Conn   grpc.ClientConnInterface
	Broker *goplugin.GRPCBroker
	// Exited is closed when the plugin process exits.
	Exited <-chan struct{}
}

// GRPCServer registers the plugin's hooks.
func (p *GRPCPlugin) GRPCServer(b *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &server{impl: p.Impl, broker: b})
	return nil
}

// GRPCClient returns a *Remote.
func (p *GRPCPlugin) GRPCClient(ctx context.Context, b *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Remote{PluginClient: pb.NewPluginClient(c), Conn: c, Broker: b, Exited: ctx.Done()}, nil
}

// Serve runs impl as a plugin until the host stops it. It does not return
// in normal operation; run it as the last statement of main.
func Serve(impl any) {
	cfg := &goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}},
		// Stream workers reuse goroutines across calls instead of starting
		// one per call: a few microseconds off every hook round trip.
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.NumStreamWorkers(uint32(max(runtime.GOMAXPROCS(0), 2))),
				grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20))...)
		},
	}
	if os.Getenv(DebugEnv) == "1" {
		serveDebug(cfg)
		return
	}
	goplugin.Serve(cfg)
}

// serveDebug serves without a host process (go-plugin's test mode) so that
// the plugin can run under a debugger; the host reattaches to it.
func serveDebug(cfg *goplugin.ServeConfig) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ch := make(chan *goplugin.ReattachConfig, 1)
	closed := make(chan struct{})
	cfg.Test = &goplugin.ServeTestConfig{Context: ctx, ReattachConfigCh: ch, CloseCh: closed}
	go goplugin.Serve(cfg)
	select {
	case rc := <-ch:
		b, _ := json.Marshal(map[string]any{"protocol": rc.Protocol, "network": rc.Addr.Network(),
			"addr": rc.Addr.String(), "pid": rc.Pid})
		fmt.Printf("%s%s\n", ReattachPrefix, b)
		fmt.Fprintf(os.Stderr, "plugin waiting for a host; start it with UNHIDRA_PLUGIN_REATTACH='{\"<plugin id>\": %s}'\n", b)
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "plugin: debug serve did not start")
		os.Exit(1)
	}
	<-closed
}

// server implements the Plugin service on top of impl.
type server struct {
	pb.UnimplementedPluginServer
	impl   any
	broker *goplugin.GRPCBroker

	mu   sync.Mutex
	host *Host
}

func hooksOf(impl any) []pb.Hook {
	var hs []pb.Hook
	add := func(ok bool, h pb.Hook) {
		if ok {
			hs = append(hs, h)
		}
	}
	_, ok := impl.(Activator)
	add(ok, pb.Hook_HOOK_ON_ACTIVATE)
	_, ok = impl.(Deactivator)
	add(ok, pb.Hook_HOOK_ON_DEACTIVATE)
	_, ok = impl.(ConfigurationChanger)
	add(ok, pb.Hook_HOOK_ON_CONFIGURATION_CHANGE)
	_, ok = impl.(MessageWillBePostedHook)
	add(ok, pb.Hook_HOOK_MESSAGE_WILL_BE_POSTED)
	_, ok = impl.(MessageHasBeenPostedHook)
	add(ok, pb.Hook_HOOK_MESSAGE_HAS_BEEN_POSTED)
	_, ok = impl.(MessageWillBeUpdatedHook)
	add(ok, pb.Hook_HOOK_MESSAGE_WILL_BE_UPDATED)
	_, ok = impl.(MessageHasBeenUpdatedHook)
	add(ok, pb.Hook_HOOK_MESSAGE_HAS_BEEN_UPDATED)
	_, ok = impl.(MessageHasBeenDeletedHook)
	add(ok, pb.Hook_HOOK_MESSAGE_HAS_BEEN_DELETED)
	_, ok = impl.(UserWillLogInHook)
	add(ok, pb.Hook_HOOK_USER_WILL_LOG_IN)
	_, ok = impl.(UserHasLoggedInHook)
	add(ok, pb.Hook_HOOK_USER_HAS_LOGGED_IN)
	_, ok = impl.(UserHasJoinedRoomHook)
	add(ok, pb.Hook_HOOK_USER_HAS_JOINED_ROOM)
	_, ok = impl.(UserHasLeftRoomHook)
	add(ok, pb.Hook_HOOK_USER_HAS_LEFT_ROOM)
	_, ok = impl.(WebSocketConnectHook)
	add(ok, pb.Hook_HOOK_ON_WEB_SOCKET_CONNECT)
	_, ok = impl.(WebSocketDisconnectHook)
	add(ok, pb.Hook_HOOK_ON_WEB_SOCKET_DISCONNECT)
	_, ok = impl.(CommandExecutor)
	add(ok, pb.Hook_HOOK_EXECUTE_COMMAND)
	_, ok = impl.(http.Handler)
	add(ok, pb.Hook_HOOK_SERVE_HTTP)
	_, ok = impl.(Ticker)
	add(ok, pb.Hook_HOOK_ON_TICK)
	return hs
}

func (s *server) Handshake(context.Context, *pb.HandshakeRequest) (*pb.HandshakeResponse, error) {
	return &pb.HandshakeResponse{ContractVersion: ContractVersion, Hooks: hooksOf(s.impl), Sdk: "unhidra-go-sdk/1"}, nil
}

// hookErr turns a hook's error into a gRPC status the host understands:
// a Rejection is an answer, not a failure, and is returned as a verdict by
// the callers; anything else is Unknown with the message.
func hookErr(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.Unknown, err.Error())
}

func (s *server) OnActivate(ctx context.Context, r *pb.ActivateRequest) (*pb.Empty, error) {
	conn, err := s.broker.Dial(r.HostBrokerId)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial host API: %v", err)
	}
	h := &Host{c: pb.NewHostClient(conn), id: r.PluginId, bot: r.BotUserId, config: Config(r.ConfigJson)}
	s.mu.Lock()
	s.host = h
	s.mu.Unlock()
	if a, ok := s.impl.(Activator); ok {
		return &pb.Empty{}, hookErr(a.OnActivate(ctx, h))
	}
	return &pb.Empty{}, nil
}

func (s *server) OnDeactivate(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	if d, ok := s.impl.(Deactivator); ok {
		return &pb.Empty{}, hookErr(d.OnDeactivate(ctx))
	}
	return &pb.Empty{}, nil
}

func (s *server) OnConfigurationChange(ctx context.Context, r *pb.ConfigurationChangeRequest) (*pb.Empty, error) {
	s.mu.Lock()
	if s.host != nil {
		s.host.setConfig(Config(r.ConfigJson))
	}
	s.mu.Unlock()
	if c, ok := s.impl.(ConfigurationChanger); ok {
		return &pb.Empty{}, hookErr(c.OnConfigurationChange(ctx, Config(r.ConfigJson)))
	}
	return &pb.Empty{}, nil
}

func fromPB(m *pb.Message) *Message {
	if m == nil {
		return &Message{}
	}
	out := &Message{ID: m.Id, Room: m.Room, Sender: m.Sender, Text: m.Text, Thread: m.Thread, Seq: m.Seq}
	if len(m.MetaJson) > 0 {
		out.Meta = json.RawMessage(m.MetaJson)
	}
	if m.Ts != 0 {
		out.TS = time.UnixMilli(m.Ts)
	}
	return out
}

// verdict turns a "Will" hook's result into the wire answer.
func verdict(err error, modified bool, text string, meta []byte) (*pb.MessageVerdict, error) {
	var rej *Rejection
	if errors.As(err, &rej) {
		return &pb.MessageVerdict{Action: pb.Action_ACTION_REJECT, Reason: rej.Reason}, nil
	}
	if err != nil {
		return nil, hookErr(err)
	}
	if modified {
		return &pb.MessageVerdict{Action: pb.Action_ACTION_MODIFY, Text: text, MetaJson: meta}, nil
	}
	return &pb.MessageVerdict{}, nil
}

func (s *server) MessageWillBePosted(ctx context.Context, r *pb.MessageWillBePostedRequest) (*pb.MessageVerdict, error) {
	m := fromPB(r.Message)
	err := s.impl.(MessageWillBePostedHook).MessageWillBePosted(ctx, m)
	modified := m.Text != r.Message.GetText() || !bytes.Equal(m.Meta, r.Message.GetMetaJson())
	return verdict(err, modified, m.Text, m.Meta)
}

func (s *server) MessageHasBeenPosted(ctx context.Context, r *pb.MessageEvent) (*pb.Empty, error) {
	return &pb.Empty{}, hookErr(s.impl.(MessageHasBeenPostedHook).MessageHasBeenPosted(ctx, fromPB(r.Message)))
}

func (s *server) MessageWillBeUpdated(ctx context.Context, r *pb.MessageWillBeUpdatedRequest) (*pb.MessageVerdict, error) {
	e := &Edit{Room: r.Room, ID: r.Id, Editor: r.Editor, NewText: r.NewText}
	err := s.impl.(MessageWillBeUpdatedHook).MessageWillBeUpdated(ctx, e)
	return verdict(err, e.NewText != r.NewText, e.NewText, nil)
}

func (s *server) MessageHasBeenUpdated(ctx context.Context, r *pb.MessageEvent) (*pb.Empty, error) {
	return &pb.Empty{}, hookErr(s.impl.(MessageHasBeenUpdatedHook).MessageHasBeenUpdated(ctx, fromPB(r.Message), r.Actor))
}

func (s *server) MessageHasBeenDeleted(ctx context.Context, r *pb.MessageEvent) (*pb.Empty, error) {
	m := r.GetMessage()
	return &pb.Empty{}, hookErr(s.impl.(MessageHasBeenDeletedHook).MessageHasBeenDeleted(ctx, m.GetRoom(), m.GetId(), r.Actor))
}

func (s *server) UserWillLogIn(ctx context.Context, r *pb.UserEvent) (*pb.MessageVerdict, error) {
	err := s.impl.(UserWillLogInHook).UserWillLogIn(ctx, Login{UserID: r.UserId, Username: r.Username, Device: r.Device})
	return verdict(err, false, "", nil)
}

func (s *server) UserHasLoggedIn(ctx context.Context, r *pb.UserEvent) (*pb.Empty, error) {
	return &pb.Empty{}, hookErr(s.impl.(UserHasLoggedInHook).UserHasLoggedIn(ctx, Login{UserID: r.UserId, Username: r.Username, Device: r.Device}))
}

func (s *server) UserHasJoinedRoom(ctx context.Context, r *pb.RoomEvent) (*pb.Empty, error) {
	return &pb.Empty{}, hookErr(s.impl.(UserHasJoinedRoomHook).UserHasJoinedRoom(ctx, r.UserId, r.Room))
}

func (s *server) UserHasLeftRoom(ctx context.Context, r *pb.RoomEvent) (*pb.Empty, error) {
	return &pb.Empty{}, hookErr(s.impl.(UserHasLeftRoomHook).UserHasLeftRoom(ctx, r.UserId, r.Room))
}

func (s *server) OnWebSocketConnect(ctx context.Context, r *pb.ConnectionEvent) (*pb.Empty, error) {
	return &pb.Empty{}, hookErr(s.impl.(WebSocketConnectHook).OnWebSocketConnect(ctx, r.UserId, r.SessionId))
}

func (s *server) OnWebSocketDisconnect(ctx context.Context, r *pb.ConnectionEvent) (*pb.Empty, error) {
	return &pb.Empty{}, hookErr(s.impl.(WebSocketDisconnectHook).OnWebSocketDisconnect(ctx, r.UserId, r.SessionId))
}

func (s *server) ExecuteCommand(ctx context.Context, r *pb.CommandRequest) (*pb.CommandResponse, error) {
	resp, err := s.impl.(CommandExecutor).ExecuteCommand(ctx, &CommandArgs{Trigger: r.Trigger, Args: r.Args, UserID: r.UserId, Room: r.Room})
	if err != nil {
		return nil, hookErr(err)
	}
	if resp == nil {
		return &pb.CommandResponse{}, nil
	}
	out := &pb.CommandResponse{Text: resp.Text}
	if resp.InRoom {
		out.Visibility = pb.Visibility_VISIBILITY_IN_ROOM
	}
	return out, nil
}

func (s *server) OnTick(ctx context.Context, r *pb.TickRequest) (*pb.Empty, error) {
	return &pb.Empty{}, hookErr(s.impl.(Ticker).OnTick(ctx, time.UnixMilli(r.Now)))
}

// ServeHTTP adapts the stream to net/http: request parts feed r.Body through
// a pipe; writes to w become response parts.
func (s *server) ServeHTTP(stream pb.Plugin_ServeHTTPServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	head := first.GetHead()
	if head == nil {
		return status.Error(codes.InvalidArgument, "first request part has no head")
	}
	u := &url.URL{Path: head.Path, RawQuery: head.RawQuery}
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(stream.Context(), head.Method, u.String(), pr)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "bad request head: %v", err)
	}
	req.RemoteAddr = head.RemoteAddr
	if head.UserId != "" {
		req = req.WithContext(context.WithValue(req.Context(), callerKey{}, Caller{UserID: head.UserId, SessionID: head.SessionId}))
	}
	for _, h := range head.Headers {
		for _, v := range h.Values {
			req.Header.Add(h.Name, v)
		}
	}
	go func() {
		if len(first.Body) > 0 {
			if _, err := pw.Write(first.Body); err != nil {
				return
			}
		}
		for {
			p, err := stream.Recv()
			if err == io.EOF {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(p.Body); err != nil {
				return
			}
		}
	}()
	w := &responseWriter{stream: stream, header: http.Header{}}
	s.impl.(http.Handler).ServeHTTP(w, req)
	pr.Close()
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.Flush()
	return w.err
}

type callerKey struct{}

// Caller is the verified user behind a request to /plugins/{id}/: the core
// checked the request's access token (which the plugin never sees).
type Caller struct {
	UserID    string
	SessionID string
}

// CallerOf returns the verified caller of r; ok is false for an anonymous
// request (no token, or one that was invalid or expired).
func CallerOf(r *http.Request) (c Caller, ok bool) {
	c, ok = r.Context().Value(callerKey{}).(Caller)
	return c, ok
}

// responseWriter buffers up to 32 KiB before sending a part; Flush sends now.
type responseWriter struct {
	stream      pb.Plugin_ServeHTTPServer
	header      http.Header
	wroteHeader bool
	headSent    bool
	status      int
	buf         []byte
	err         error
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, code
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= 32<<10 {
		w.Flush()
	}
	return len(p), w.err
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	if w.err != nil {
		return
	}
	part := &pb.HTTPResponsePart{Body: w.buf}
	if !w.headSent {
		if !w.wroteHeader {
			w.WriteHeader(http.StatusOK)
		}
		hs := make([]*pb.Header, 0, len(w.header))
		for k, v := range w.header {
			hs = append(hs, &pb.Header{Name: k, Values: v})
		}
		part.Head = &pb.HTTPResponseHead{Status: int32(w.status), Headers: hs}
		w.headSent = true
	} else if len(w.buf) == 0 {
		return
	}
	w.err = w.stream.Send(part)
	w.buf = w.buf[:0]
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
