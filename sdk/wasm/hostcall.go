package unhidra

import (
	"encoding/json"
)

// HostCall calls a method of the host API by its rpc name in the Host
// service of sdk/proto/pluginv1/plugin.proto ("ListUsers", "IssueLogin",
// …): req is encoded to JSON and must use the proto's field names
// (user_id), the answer is decoded into resp (nil ignores it). 64-bit
// integers in answers are JSON strings, as protojson writes them.
//
// The host checks the module's grants exactly as for a process plugin; a
// refusal, like every failure, is a *HostError whose message starts with
// the gRPC code name: "PERMISSION_DENIED: …", "NOT_FOUND: …".
func HostCall(method string, req, resp any) error {
	in := []byte("{}")
	if req != nil {
		var err error
		if in, err = json.Marshal(req); err != nil {
			return err
		}
	}
	out, err := callHost(method, in)
	if err != nil {
		return err
	}
	if resp == nil || len(out) == 0 {
		return nil
	}
	return json.Unmarshal(out, resp)
}
