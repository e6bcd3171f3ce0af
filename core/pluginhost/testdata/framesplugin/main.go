// framesplugin is the process plugin of the plugin-frame and plugin-HTTP
// tests (core/pluginhost/frames_test.go). It answers client frames
// (OnClientFrame), publishes events when asked (Host.PublishEvent), and
// answers every HTTP request with what it was told of it (the head, as
// protojson) while trying to set cookies inside and outside its namespace.
// core/pluginhost/wasmhost/testdata/frames is its WASM twin, op for op.
//
// It serves the contract's pb.PluginServer itself over go-plugin, so that
// the tests see exactly what crosses the wire; its OnClientFrame has the
// SDK's hook signature (plugin.ClientFrame is pb.ClientFrame).
//
// With the argument -no-frames it does not offer OnClientFrame.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"unicode"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

type frames struct {
	pb.UnimplementedPluginServer
	broker   *goplugin.GRPCBroker
	noFrames bool

	mu   sync.Mutex
	host pb.HostClient
	id   string
}

func (f *frames) Handshake(context.Context, *pb.HandshakeRequest) (*pb.HandshakeResponse, error) {
	hooks := []pb.Hook{pb.Hook_HOOK_ON_ACTIVATE, pb.Hook_HOOK_SERVE_HTTP}
	if !f.noFrames {
		hooks = append(hooks, pb.Hook_HOOK_ON_CLIENT_FRAME)
	}
	return &pb.HandshakeResponse{ContractVersion: plugin.ContractVersion, Hooks: hooks, Sdk: "framesplugin"}, nil
}

func (f *frames) OnActivate(_ context.Context, r *pb.ActivateRequest) (*pb.Empty, error) {
	conn, err := f.broker.Dial(r.HostBrokerId)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.host, f.id = pb.NewHostClient(conn), r.PluginId
	f.mu.Unlock()
	return &pb.Empty{}, nil
}

func (f *frames) OnDeactivate(context.Context, *pb.Empty) (*pb.Empty, error) { return &pb.Empty{}, nil }

// OnClientFrame answers the ops the tests use:
//
//	echo     the frame as the plugin received it
//	publish  data is a PublishEventRequest (protojson); answers the
//	         PublishEventResponse or {"code","error"} of the refusal
//	publish-big  the same with data_json replaced by 64 KiB and a bit
//	refuse   answers error_code data.code with error_message data.message
//	fail     returns an error
//	slow     answers only when its deadline has passed
//	invalid  answers data that is not JSON
func (f *frames) OnClientFrame(ctx context.Context, r *pb.ClientFrame) (*pb.ClientFrameReply, error) {
	switch r.Op {
	case "echo":
		b, _ := json.Marshal(map[string]any{"op": r.Op, "ref": r.Ref, "room": r.Room, "user_id": r.UserId,
			"session_id": r.SessionId, "data": json.RawMessage(orNull(r.DataJson))})
		return &pb.ClientFrameReply{DataJson: b}, nil
	case "publish", "publish-big":
		var req pb.PublishEventRequest
		if err := protojson.Unmarshal(r.DataJson, &req); err != nil {
			return &pb.ClientFrameReply{ErrorCode: "bad_request", ErrorMessage: err.Error()}, nil
		}
		if r.Op == "publish-big" {
			req.DataJson = []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
		}
		f.mu.Lock()
		host := f.host
		f.mu.Unlock()
		resp, err := host.PublishEvent(ctx, &req)
		if err != nil {
			st := status.Convert(err)
			b, _ := json.Marshal(map[string]string{"code": upperSnake(st.Code().String()), "error": st.Message()})
			return &pb.ClientFrameReply{DataJson: b}, nil
		}
		b, _ := protojson.Marshal(resp)
		return &pb.ClientFrameReply{DataJson: b}, nil
	case "refuse":
		var d struct{ Code, Message string }
		_ = json.Unmarshal(r.DataJson, &d)
		return &pb.ClientFrameReply{ErrorCode: d.Code, ErrorMessage: d.Message}, nil
	case "fail":
		return nil, errors.New("the plugin failed on purpose")
	case "slow":
		<-ctx.Done()
		return nil, ctx.Err()
	case "invalid":
		return &pb.ClientFrameReply{DataJson: []byte("{not json")}, nil
	}
	return &pb.ClientFrameReply{ErrorCode: "not_found", ErrorMessage: "no op " + r.Op}, nil
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// upperSnake spells a gRPC code as the proto does (PERMISSION_DENIED).
func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// ServeHTTP answers with the request head it received, as protojson, and
// tries to set cookies: its own, another plugin's, the console's, one with
// a Domain, one on the whole site.
func (f *frames) ServeHTTP(stream pb.Plugin_ServeHTTPServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
	}
	f.mu.Lock()
	id := f.id
	f.mu.Unlock()
	body, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(first.Head)
	own := "unhidra-" + id + "-"
	return stream.Send(&pb.HTTPResponsePart{Head: &pb.HTTPResponseHead{Status: 200, Headers: []*pb.Header{
		{Name: "Content-Type", Values: []string{"application/json"}},
		{Name: "Set-Cookie", Values: []string{
			own + "ok=1; Path=/plugins/" + id + "/; HttpOnly",
			own + "nopath=1",
			"sid=stolen; Path=/",
			"unhidra-other-x=1; Path=/plugins/other/",
			own + "dom=1; Domain=example.com",
			own + "root=1; Path=/",
			own + "prefix=1; Path=/plugins/" + id + "x/",
		}},
	}}, Body: body})
}

type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	impl *frames
}

func (p *grpcPlugin) GRPCServer(b *goplugin.GRPCBroker, s *grpc.Server) error {
	p.impl.broker = b
	pb.RegisterPluginServer(s, p.impl)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("framesplugin is a plugin, not a host")
}

func main() {
	f := &frames{noFrames: len(os.Args) > 1 && os.Args[1] == "-no-frames"}
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: plugin.Handshake,
		Plugins:         goplugin.PluginSet{plugin.PluginName: &grpcPlugin{impl: f}},
		GRPCServer:      goplugin.DefaultGRPCServer,
	})
}
