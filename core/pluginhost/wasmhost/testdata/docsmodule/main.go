// Module docsmodule is the WASM half of the "docs agree with the code"
// tests: a command whose error reaches the sender, one that traps, and the
// KV limits probe that docsplugin (its process twin) runs too.
package main

import (
	"errors"
	"os"
	"strings"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type docs struct{}

func (docs) Commands() []unhidra.Command {
	return []unhidra.Command{{Trigger: "wfail"}, {Trigger: "wtrap"}, {Trigger: "wkvlimits"}}
}

func (docs) ExecuteCommand(req *unhidra.CommandRequest) (*unhidra.CommandResponse, error) {
	switch req.Trigger {
	case "wfail":
		if req.Args == "" {
			return nil, errors.New("usage: /wfail <text>")
		}
		return &unhidra.CommandResponse{Text: req.Args}, nil
	case "wtrap":
		os.Exit(3) // the instance dies: a trap, not the module's error
	case "wkvlimits":
		return &unhidra.CommandResponse{Text: probe(func(k string, v []byte) error { return unhidra.KVSet(k, v, 0) })}, nil
	}
	return nil, errors.New("unknown command " + req.Trigger)
}

// probe writes at and just past the documented KV limits (keys ≤256 bytes,
// values ≤1 MiB) and reports each outcome; docsplugin has the same code.
func probe(set func(key string, val []byte) error) string {
	var out []string
	try := func(name, key string, val []byte) {
		if err := set(key, val); err != nil {
			out = append(out, name+"=error: "+err.Error())
		} else {
			out = append(out, name+"=ok")
		}
	}
	try("key256", strings.Repeat("k", 256), []byte("v"))
	try("key257", strings.Repeat("k", 257), []byte("v"))
	try("value1MiB", "big", make([]byte, 1<<20))
	try("value1MiB+1", "big", make([]byte, 1<<20+1))
	return strings.Join(out, "\n")
}

func init() { unhidra.Register(docs{}) }
func main() {}
