// A module whose filter never returns.
package main

import unhidra "github.com/unhidra/unhidra/sdk/wasm"

type loop struct{}

var sink int

func (loop) MessageWillBePosted(p *unhidra.Post) unhidra.PostDecision {
	if p.Text == "ok" {
		return unhidra.PostDecision{}
	}
	for i := 0; ; i++ {
		sink += i
	}
}

func init() { unhidra.Register(loop{}) }
func main() {}
