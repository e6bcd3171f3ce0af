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
	"google.golang.org/protobuf/proto"

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
	srv := &server{impl: p.Impl, broker: b}
	s.RegisterService(srv.serviceDesc(), srv)
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

// server serves the Plugin service on top of impl, table-driven: every hook
// of the contract (pb.Hooks) is a method whose request type comes from the
// declaration and whose call comes from the generated hookTable.
type server struct {
	impl   any
	broker *goplugin.GRPCBroker

	mu   sync.Mutex
	host *Host
}

var hooksByID = func() map[pb.Hook]hookEntry {
	m := make(map[pb.Hook]hookEntry, len(hookTable))
	for _, e := range hookTable {
		m[e.hook] = e
	}
	return m
}()

// hooksOf lists the hooks impl implements, in declaration order.
func hooksOf(impl any) []pb.Hook {
	var hs []pb.Hook
	for _, e := range hookTable {
		if e.implements(impl) {
			hs = append(hs, e.hook)
		}
	}
	return hs
}

// serviceDesc describes the Plugin service with one handler per hook.
func (s *server) serviceDesc() *grpc.ServiceDesc {
	sd := &grpc.ServiceDesc{ServiceName: pb.Plugin_ServiceDesc.ServiceName, HandlerType: (*any)(nil),
		Metadata: pb.Plugin_ServiceDesc.Metadata}
	sd.Methods = append(sd.Methods, grpc.MethodDesc{MethodName: "Handshake",
		Handler: s.unary(pb.Plugin_Handshake_FullMethodName, func() proto.Message { return new(pb.HandshakeRequest) },
			func(context.Context, proto.Message) (proto.Message, error) {
				return &pb.HandshakeResponse{ContractVersion: ContractVersion, Hooks: hooksOf(s.impl), Sdk: "unhidra-go-sdk/2"}, nil
			})})
	for _, spec := range pb.Hooks() {
		if spec.Request == nil {
			continue // streaming: below
		}
		sd.Methods = append(sd.Methods, grpc.MethodDesc{MethodName: spec.Name,
			Handler: s.unary(spec.FullMethod, spec.NewRequest, func(ctx context.Context, req proto.Message) (proto.Message, error) {
				return s.dispatch(ctx, spec, req)
			})})
	}
	sd.Streams = []grpc.StreamDesc{{StreamName: "ServeHTTP", ServerStreams: true, ClientStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			return s.serveHTTP(&grpc.GenericServerStream[pb.HTTPRequestPart, pb.HTTPResponsePart]{ServerStream: stream})
		}}}
	return sd
}

// unary adapts call to a gRPC unary handler that decodes a newReq().
func (s *server) unary(method string, newReq func() proto.Message, call func(context.Context, proto.Message) (proto.Message, error)) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
		req := newReq()
		if err := dec(req); err != nil {
			return nil, err
		}
		if icpt == nil {
			return call(ctx, req)
		}
		return icpt(ctx, req, &grpc.UnaryServerInfo{Server: s, FullMethod: method}, func(ctx context.Context, r any) (any, error) {
			return call(ctx, r.(proto.Message))
		})
	}
}

// dispatch runs one unary hook. A Rejection from a verdict hook is its
// REJECT answer; any other error is a plugin failure (gRPC Unknown with the
// error's text), which the host handles per the hook's failure policy.
func (s *server) dispatch(ctx context.Context, spec pb.HookSpec, req proto.Message) (proto.Message, error) {
	switch spec.Hook {
	case pb.Hook_HOOK_ON_ACTIVATE:
		return s.activate(ctx, req.(*pb.ActivateRequest))
	case pb.Hook_HOOK_ON_CONFIGURATION_CHANGE:
		s.mu.Lock()
		if s.host != nil {
			s.host.setConfig(Config(req.(*pb.ConfigurationChangeRequest).ConfigJson))
		}
		s.mu.Unlock()
	}
	e, ok := hooksByID[spec.Hook]
	if !ok || e.call == nil || !e.implements(s.impl) {
		if spec.Kind == pb.HookKind_HOOK_KIND_LIFECYCLE {
			return spec.NewResponse(), nil // lifecycle hooks are optional
		}
		return nil, status.Errorf(codes.Unimplemented, "plugin does not implement %s", spec.Name)
	}
	resp, err := e.call(ctx, s.impl, req)
	if err != nil {
		var rej *Rejection
		if errors.As(err, &rej) && spec.Response.Descriptor().FullName() == verdictName {
			return &pb.MessageVerdict{Action: pb.Action_ACTION_REJECT, Reason: rej.Reason}, nil
		}
		return nil, hookErr(err)
	}
	if resp == nil {
		resp = spec.NewResponse() // a nil verdict allows
	}
	return resp, nil
}

var verdictName = (&pb.MessageVerdict{}).ProtoReflect().Descriptor().FullName()

// hookErr turns a hook's error into a gRPC status the host understands.
func hookErr(err error) error {
	if err == nil {
		return nil
	}
	return status.Error(codes.Unknown, err.Error())
}

// activate dials the host API and runs the plugin's OnActivate, if any.
func (s *server) activate(ctx context.Context, r *pb.ActivateRequest) (*pb.Empty, error) {
	conn, err := s.broker.Dial(r.HostBrokerId)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial host API: %v", err)
	}
	h := &Host{c: pb.NewHostClient(conn), id: r.PluginId, bot: r.BotUserId, config: Config(r.ConfigJson)}
	s.mu.Lock()
	s.host = h
	s.mu.Unlock()
	if a, ok := s.impl.(OnActivateHook); ok {
		return &pb.Empty{}, hookErr(a.OnActivate(ctx, h))
	}
	return &pb.Empty{}, nil
}

// serveHTTP adapts the stream to net/http: request parts feed r.Body through
// a pipe; writes to w become response parts.
func (s *server) serveHTTP(stream pb.Plugin_ServeHTTPServer) error {
	handler, ok := s.impl.(http.Handler)
	if !ok {
		return status.Error(codes.Unimplemented, "plugin does not implement ServeHTTP")
	}
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
	handler.ServeHTTP(w, req)
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
