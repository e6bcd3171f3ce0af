// The WASM twin of core/pluginhost/testdata/framesplugin for the
// plugin-frame tests: it answers client frames (OnClientFrame) op for op
// like the process plugin and publishes events through the host_call
// import. It speaks ABI v1 and the protojson of later hooks by hand (no
// SDK), so the tests see exactly what crosses the boundary.
package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"unsafe"
)

var keep = map[uint32][]byte{}

//go:wasmexport unhidra_abi_v1
func abi() uint32 { return 1 }

//go:wasmexport unhidra_malloc
func malloc(n uint32) uint32 {
	b := make([]byte, n+1)
	p := uint32(uintptr(unsafe.Pointer(&b[0])))
	keep[p] = b
	return p
}

//go:wasmexport unhidra_free
func free(p uint32) { delete(keep, p) }

var last []byte

func out(b []byte) uint64 {
	last = b
	return uint64(uint32(uintptr(unsafe.Pointer(&b[0]))))<<32 | uint64(len(b))
}

//go:wasmexport unhidra_describe
func describe() uint64 { return out([]byte(`{"abi":1,"hooks":["OnClientFrame"]}`)) }

//go:wasmimport unhidra host_call
func hostCall(mp, mn, ip, in uint32) int64

//go:wasmimport unhidra take
func take(p uint32)

func view(p, n uint32) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), uintptr(p))), n)
}

func ptr(b []byte) (uint32, uint32) {
	if len(b) == 0 {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
}

// callHost runs a host call; err is the host's "CODE: message".
func callHost(method string, in []byte) (res []byte, err string) {
	m := []byte(method)
	mp, mn := ptr(m)
	ip, n := ptr(in)
	r := hostCall(mp, mn, ip, n)
	switch {
	case r >= 0:
		res = make([]byte, r)
		if r > 0 {
			take(uint32(uintptr(unsafe.Pointer(&res[0]))))
		}
		return res, ""
	case r == -1:
		return nil, "NOT_FOUND"
	}
	msg := make([]byte, -r-2)
	if len(msg) > 0 {
		take(uint32(uintptr(unsafe.Pointer(&msg[0]))))
	}
	return nil, string(msg)
}

// frame is pb.ClientFrame as protojson with proto names (uint64 is a string).
type frame struct {
	Op      string `json:"op"`
	Ref     string `json:"ref"`
	Room    string `json:"room"`
	Data    []byte `json:"data_json"`
	User    string `json:"user_id"`
	Session string `json:"session_id"`
}

type reply struct {
	Data []byte `json:"data_json,omitempty"`
	Code string `json:"error_code,omitempty"`
	Msg  string `json:"error_message,omitempty"`
}

func envelope(r any, errMsg string) uint64 {
	var env struct {
		Result json.RawMessage `json:"result,omitempty"`
		Error  string          `json:"error,omitempty"`
	}
	env.Error = errMsg
	if r != nil {
		env.Result, _ = json.Marshal(r)
	}
	b, _ := json.Marshal(env)
	return out(b)
}

//go:wasmexport unhidra_call
func call(hp, hn, ip, in uint32) uint64 {
	hook := string(view(hp, hn))
	if hook != "OnClientFrame" {
		return envelope(nil, hook+": hook not implemented")
	}
	var f frame
	if in > 0 {
		if err := json.Unmarshal(view(ip, in), &f); err != nil {
			return envelope(nil, "decode OnClientFrame: "+err.Error())
		}
	}
	switch f.Op {
	case "echo":
		sid, _ := strconv.ParseUint(f.Session, 10, 64)
		data := json.RawMessage(f.Data)
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		b, _ := json.Marshal(map[string]any{"op": f.Op, "ref": f.Ref, "room": f.Room, "user_id": f.User,
			"session_id": sid, "data": data})
		return envelope(reply{Data: b}, "")
	case "publish", "publish-big":
		in := f.Data
		if f.Op == "publish-big" {
			var req map[string]any
			_ = json.Unmarshal(in, &req)
			req["data_json"] = []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
			in, _ = json.Marshal(req)
		}
		res, errMsg := callHost("PublishEvent", in)
		if errMsg != "" {
			code, msg, _ := strings.Cut(errMsg, ": ")
			b, _ := json.Marshal(map[string]string{"code": code, "error": msg})
			return envelope(reply{Data: b}, "")
		}
		return envelope(reply{Data: res}, "")
	case "refuse":
		var d struct{ Code, Message string }
		_ = json.Unmarshal(f.Data, &d)
		return envelope(reply{Code: d.Code, Msg: d.Message}, "")
	case "fail":
		return envelope(nil, "the plugin failed on purpose")
	case "slow":
		for {
		}
	case "invalid":
		return envelope(reply{Data: []byte("{not json")}, "")
	}
	return envelope(reply{Code: "not_found", Msg: "no op " + f.Op}, "")
}

func main() {}
