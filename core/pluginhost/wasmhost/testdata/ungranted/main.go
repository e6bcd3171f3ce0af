// A module that calls every capability and reports what the host said.
package main

import (
	"time"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type u struct{}

func (u) MessageWillBePosted(req *unhidra.MessageWillBePostedRequest) (*unhidra.MessageVerdict, error) {
	p := req.Message
	var err error
	switch p.GetText() {
	case "kv":
		err = unhidra.KVSet("k", []byte("v"), time.Minute)
	case "post":
		_, err = unhidra.PostMessage(p.Room, "hi")
	case "http":
		_, err = unhidra.HTTP(unhidra.HTTPRequest{URL: "http://example.com/"})
	}
	if err != nil {
		return nil, unhidra.Reject("%s", err.Error())
	}
	return unhidra.Allow(), nil
}

func init() { unhidra.Register(u{}) }
func main() {}
