// framesplugin is the process plugin of the plugin-frame and plugin-HTTP
// tests (core/pluginhost/frames_test.go), written with the Go SDK. It
// answers client frames (OnClientFrame), publishes events when asked
// (Host.PublishEvent), and answers every HTTP request with what it learned
// of it while trying to set cookies inside and outside its namespace.
// core/pluginhost/wasmhost/testdata/frames is its WASM twin, op for op.
//
// With the argument -no-frames it does not implement OnClientFrame.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"unicode"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/unhidra/unhidra/sdk/plugin"
)

// base serves HTTP only.
type base struct {
	mu   sync.Mutex
	host *plugin.Host
}

func (b *base) OnActivate(_ context.Context, h *plugin.Host) error {
	b.mu.Lock()
	b.host = h
	b.mu.Unlock()
	return nil
}

func (b *base) h() *plugin.Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.host
}

// ServeHTTP answers with what the handler was told of the request, and
// tries to set cookies: its own, another plugin's, the console's, one with a
// Domain, one on the whole site, one on a longer plugin id's path.
func (b *base) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := b.h().ID()
	caller, _ := plugin.CallerOf(r)
	own, path := "unhidra-"+id+"-", "/plugins/"+id
	for _, c := range []string{own + "ok=1; Path=" + path + "/; HttpOnly", own + "nopath=1", "sid=stolen; Path=/",
		"unhidra-other-x=1; Path=/plugins/other/", own + "dom=1; Domain=example.com", own + "root=1; Path=/",
		own + "prefix=1; Path=" + path + "x/"} {
		w.Header().Add("Set-Cookie", c)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "raw_query": r.URL.RawQuery,
		"remote_addr": r.RemoteAddr, "user_id": caller.UserID, "session_id": caller.SessionID, "headers": r.Header})
}

// frames adds OnClientFrame.
type frames struct{ *base }

// OnClientFrame answers the ops the tests use:
//
//	echo         the frame as the plugin received it
//	publish      data is a PublishEventRequest (protojson); answers the
//	             PublishEventResponse or {"code","error"} of the refusal
//	publish-big  the same with data_json replaced by 64 KiB and a bit
//	refuse       answers error_code data.code with error_message data.message
//	fail         returns an error
//	slow         answers only when its deadline has passed
//	invalid      answers data that is not JSON
func (f frames) OnClientFrame(ctx context.Context, r *plugin.ClientFrame) (*plugin.ClientFrameReply, error) {
	switch r.Op {
	case "echo":
		data := json.RawMessage(r.DataJson)
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		b, _ := json.Marshal(map[string]any{"op": r.Op, "ref": r.Ref, "room": r.Room, "user_id": r.UserId,
			"session_id": r.SessionId, "data": data})
		return &plugin.ClientFrameReply{DataJson: b}, nil
	case "publish", "publish-big":
		var req plugin.PublishEventRequest
		if err := protojson.Unmarshal(r.DataJson, &req); err != nil {
			return &plugin.ClientFrameReply{ErrorCode: "bad_request", ErrorMessage: err.Error()}, nil
		}
		if r.Op == "publish-big" {
			req.DataJson = []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
		}
		resp, err := f.h().PublishEvent(ctx, &req)
		if err != nil {
			code := upperSnake(status.Code(err).String())
			b, _ := json.Marshal(map[string]string{"code": code, "error": err.Error()})
			return &plugin.ClientFrameReply{DataJson: b}, nil
		}
		b, _ := protojson.Marshal(resp)
		return &plugin.ClientFrameReply{DataJson: b}, nil
	case "refuse":
		var d struct{ Code, Message string }
		_ = json.Unmarshal(r.DataJson, &d)
		return &plugin.ClientFrameReply{ErrorCode: d.Code, ErrorMessage: d.Message}, nil
	case "fail":
		return nil, errors.New("the plugin failed on purpose")
	case "slow":
		<-ctx.Done()
		return nil, ctx.Err()
	case "invalid":
		return &plugin.ClientFrameReply{DataJson: []byte("{not json")}, nil
	}
	return &plugin.ClientFrameReply{ErrorCode: "not_found", ErrorMessage: "no op " + r.Op}, nil
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

func main() {
	b := &base{}
	if len(os.Args) > 1 && os.Args[1] == "-no-frames" {
		plugin.Serve(b)
		return
	}
	plugin.Serve(frames{b})
}
