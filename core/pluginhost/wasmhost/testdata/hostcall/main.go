// A module that calls any host method through the generic host_call import
// (unhidra.HostCall): its command (/<config command>) takes a method name
// and a protojson request, "/wcall ListUsers {"limit":5}", and answers
// "OK <json>" or "ERR <message>" (messages start with the gRPC code name,
// e.g. "PERMISSION_DENIED: …"). It registers the command itself, through
// host_call, when activated, and is a second factor for users whose name
// starts with "wmfa-" (factor "wcode"; the test confirms it through the
// command, as a factor page would).
package main

import (
	"encoding/json"
	"strings"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type mod struct{}

func (mod) OnActivate(req *unhidra.ActivateRequest) error {
	var cfg struct {
		Command string `json:"command"`
	}
	if len(req.ConfigJson) > 0 {
		if err := json.Unmarshal(req.ConfigJson, &cfg); err != nil {
			return err
		}
	}
	if cfg.Command == "" {
		cfg.Command = "wcall"
	}
	if err := unhidra.HostCall("RegisterCommand", &unhidra.Command{Trigger: cfg.Command}, nil); err != nil {
		unhidra.Log(unhidra.LevelWarn, "register command: "+err.Error())
	}
	return nil
}

func (mod) ExecuteCommand(req *unhidra.CommandRequest) (*unhidra.CommandResponse, error) {
	method, in, _ := strings.Cut(strings.TrimSpace(req.Args), " ")
	var body any
	if strings.TrimSpace(in) != "" {
		body = json.RawMessage(in)
	}
	var out json.RawMessage
	if err := unhidra.HostCall(method, body, &out); err != nil {
		return &unhidra.CommandResponse{Text: "ERR " + err.Error()}, nil
	}
	if len(out) == 0 {
		out = json.RawMessage("{}")
	}
	return &unhidra.CommandResponse{Text: "OK " + string(out)}, nil
}

func (mod) SecondFactorRequired(req *unhidra.SecondFactorRequest) (*unhidra.SecondFactorResponse, error) {
	if !strings.HasPrefix(req.Username, "wmfa-") {
		return &unhidra.SecondFactorResponse{}, nil
	}
	return &unhidra.SecondFactorResponse{Required: true,
		Factors: []*unhidra.Factor{{Id: "wcode", Label: "WASM code", Path: "/wmfa"}}}, nil
}

func init() { unhidra.Register(mod{}) }
func main() {}
