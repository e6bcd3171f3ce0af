// A module that allocates without bound.
package main

import unhidra "github.com/unhidra/unhidra/sdk/wasm"

type bomb struct{}

var hoard [][]byte

func (bomb) MessageWillBePosted(req *unhidra.MessageWillBePostedRequest) (*unhidra.MessageVerdict, error) {
	if req.Message.GetText() == "ok" {
		return unhidra.Allow(), nil
	}
	for {
		b := make([]byte, 1<<20)
		b[0] = 1
		hoard = append(hoard, b)
	}
}

func init() { unhidra.Register(bomb{}) }
func main() {}
