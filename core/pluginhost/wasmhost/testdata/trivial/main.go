// The cheapest possible filter: allow everything (for benchmarks).
package main

import unhidra "github.com/unhidra/unhidra/sdk/wasm"

type t struct{}

func (t) MessageWillBePosted(*unhidra.MessageWillBePostedRequest) (*unhidra.MessageVerdict, error) {
	return nil, nil
}

func init() { unhidra.Register(t{}) }
func main() {}
