// A module that calls any host method through the generic host_call import:
// its command (/<config command>) takes a method name and a JSON request,
// "/wcall ListUsers {"limit":5}", and answers "OK <json>" or "ERR <message>"
// (messages start with the gRPC code name, e.g. "PERMISSION_DENIED: …").
// It registers the command itself, through host_call, when activated.
package main

import (
	"encoding/json"
	"strings"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type mod struct{}

func (mod) OnActivate(config []byte) error {
	var cfg struct {
		Command string `json:"command"`
	}
	if len(config) > 0 {
		if err := json.Unmarshal(config, &cfg); err != nil {
			return err
		}
	}
	if cfg.Command == "" {
		cfg.Command = "wcall"
	}
	if err := unhidra.HostCall("RegisterCommand", map[string]string{"trigger": cfg.Command}, nil); err != nil {
		unhidra.Log(unhidra.LevelWarn, "register command: "+err.Error())
	}
	return nil
}

// Commands is empty: the command is registered in OnActivate.
func (mod) Commands() []unhidra.Command { return nil }

func (mod) ExecuteCommand(a *unhidra.CommandArgs) (*unhidra.CommandResponse, error) {
	rest := strings.TrimSpace(strings.TrimPrefix(a.Raw, "/"+a.Command))
	method, req, _ := strings.Cut(rest, " ")
	var out json.RawMessage
	var in any
	if strings.TrimSpace(req) != "" {
		in = json.RawMessage(req)
	}
	if err := unhidra.HostCall(method, in, &out); err != nil {
		return &unhidra.CommandResponse{Text: "ERR " + err.Error()}, nil
	}
	if len(out) == 0 {
		out = json.RawMessage("{}")
	}
	return &unhidra.CommandResponse{Text: "OK " + string(out)}, nil
}

func init() { unhidra.Register(mod{}) }
func main() {}
