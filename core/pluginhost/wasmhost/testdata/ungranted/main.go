// A module that calls every capability and reports what the host said.
package main

import (
	"time"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type u struct{}

func (u) MessageWillBePosted(p *unhidra.Post) unhidra.PostDecision {
	var err error
	switch p.Text {
	case "kv":
		err = unhidra.KVSet("k", []byte("v"), time.Minute)
	case "post":
		_, err = unhidra.PostMessage(p.Room, "hi")
	case "http":
		_, err = unhidra.HTTP(unhidra.HTTPRequest{URL: "http://example.com/"})
	}
	if err != nil {
		return unhidra.PostDecision{Reject: err.Error()}
	}
	return unhidra.PostDecision{}
}

func init() { unhidra.Register(u{}) }
func main() {}
