// A module that fetches a URL given as a command argument.
package main

import (
	"strconv"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type f struct{}

func (f) Commands() []unhidra.Command { return []unhidra.Command{{Trigger: "fetch"}} }

func (f) ExecuteCommand(req *unhidra.CommandRequest) (*unhidra.CommandResponse, error) {
	resp, err := unhidra.HTTP(unhidra.HTTPRequest{URL: req.Args})
	if err != nil {
		return nil, err
	}
	return &unhidra.CommandResponse{Text: strconv.Itoa(resp.Status) + " " + string(resp.Body)}, nil
}

func init() { unhidra.Register(f{}) }
func main() {}
