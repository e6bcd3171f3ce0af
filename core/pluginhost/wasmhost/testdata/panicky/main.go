// A module that panics (recoverable) in its filter and dies of stack
// overflow (fatal) in its command.
package main

import unhidra "github.com/unhidra/unhidra/sdk/wasm"

type p struct{}

func (p) MessageWillBePosted(req *unhidra.MessageWillBePostedRequest) (*unhidra.MessageVerdict, error) {
	if req.Message.GetText() == "ok" {
		return unhidra.Allow(), nil
	}
	var m map[string]int
	m["boom"] = 1 // nil map write: a Go panic
	return unhidra.Allow(), nil
}

func (p) Commands() []unhidra.Command { return []unhidra.Command{{Trigger: "die"}} }

func recurse(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	return recurse(n+1) + int(pad[0])
}

func (p) ExecuteCommand(*unhidra.CommandRequest) (*unhidra.CommandResponse, error) {
	return &unhidra.CommandResponse{Text: string(rune(recurse(0)))}, nil
}

func init() { unhidra.Register(p{}) }
func main() {}
