// The WASM twin of core/pluginhost/testdata/framesplugin for the
// plugin-frame tests, written with sdk/wasm: it answers client frames
// (OnClientFrame) op for op like the process plugin and publishes events
// through the generic host call (unhidra.HostCall, the host_call import).
package main

import (
	"encoding/json"
	"errors"
	"strings"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type frames struct{}

func (frames) OnClientFrame(r *unhidra.ClientFrame) (*unhidra.ClientFrameReply, error) {
	switch r.Op {
	case "echo":
		data := json.RawMessage(r.DataJson)
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		b, _ := json.Marshal(map[string]any{"op": r.Op, "ref": r.Ref, "room": r.Room, "user_id": r.UserId,
			"session_id": r.SessionId, "data": data})
		return &unhidra.ClientFrameReply{DataJson: b}, nil
	case "publish", "publish-big":
		// The frame's data is the PublishEventRequest as protojson.
		var req map[string]any
		if err := json.Unmarshal(r.DataJson, &req); err != nil {
			return &unhidra.ClientFrameReply{ErrorCode: "bad_request", ErrorMessage: err.Error()}, nil
		}
		if r.Op == "publish-big" {
			req["data_json"] = []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
		}
		var resp json.RawMessage
		if err := unhidra.HostCall("PublishEvent", &req, &resp); err != nil {
			code, _, _ := strings.Cut(err.Error(), ": ") // "PERMISSION_DENIED: …"
			b, _ := json.Marshal(map[string]string{"code": code, "error": err.Error()})
			return &unhidra.ClientFrameReply{DataJson: b}, nil
		}
		return &unhidra.ClientFrameReply{DataJson: resp}, nil
	case "refuse":
		var d struct{ Code, Message string }
		_ = json.Unmarshal(r.DataJson, &d)
		return &unhidra.ClientFrameReply{ErrorCode: d.Code, ErrorMessage: d.Message}, nil
	case "fail":
		return nil, errors.New("the plugin failed on purpose")
	case "slow":
		for {
		}
	case "invalid":
		return &unhidra.ClientFrameReply{DataJson: []byte("{not json")}, nil
	}
	return &unhidra.ClientFrameReply{ErrorCode: "not_found", ErrorMessage: "no op " + r.Op}, nil
}

func init() { unhidra.Register(frames{}) }
func main() {}
