// A module whose filter never returns.
package main

import unhidra "github.com/unhidra/unhidra/sdk/wasm"

type loop struct{}

var sink int

func (loop) MessageWillBePosted(req *unhidra.MessageWillBePostedRequest) (*unhidra.MessageVerdict, error) {
	if req.Message.GetText() == "ok" {
		return unhidra.Allow(), nil
	}
	for i := 0; ; i++ {
		sink += i
	}
}

func init() { unhidra.Register(loop{}) }
func main() {}
