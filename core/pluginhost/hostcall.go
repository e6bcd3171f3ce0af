package pluginhost

import (
	"context"
	"strings"
	"sync"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// hostMethods indexes the Host service's rpcs by name ("PublishEvent").
var hostMethods = sync.OnceValue(func() map[string]grpc.MethodDesc {
	out := map[string]grpc.MethodDesc{}
	for _, md := range pb.Host_ServiceDesc.Methods {
		out[md.MethodName] = md
	}
	return out
})

// callHost runs the Host rpc `method` for m with a protojson request (proto
// field names) and returns the answer as protojson. It goes through the
// same grant check (authorize) and handlers as the plugin's gRPC host API,
// so a WASM module can make every host call a process plugin can.
func (m *managed) callHost(ctx context.Context, method string, in []byte) ([]byte, error) {
	md, ok := hostMethods()[method]
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "no host call %q", method)
	}
	if len(in) == 0 {
		in = []byte("{}")
	}
	dec := func(v any) error {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(in, v.(proto.Message)); err != nil {
			return status.Errorf(codes.InvalidArgument, "%s request: %v", method, err)
		}
		return nil
	}
	out, err := md.Handler(&hostAPI{m: m}, ctx, dec, m.authorize)
	if err != nil {
		return nil, err
	}
	return wasmJSON.Marshal(out.(proto.Message))
}

// codeName spells a gRPC code as the proto does (PERMISSION_DENIED).
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
