// A module that fetches a URL given as a command argument.
package main

import (
	"strconv"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type f struct{}

func (f) Commands() []unhidra.Command { return []unhidra.Command{{Trigger: "fetch"}} }

func (f) ExecuteCommand(a *unhidra.CommandArgs) (*unhidra.CommandResponse, error) {
	resp, err := unhidra.HTTP(unhidra.HTTPRequest{URL: a.Args[0]})
	if err != nil {
		return nil, err
	}
	return &unhidra.CommandResponse{Text: strconv.Itoa(resp.Status) + " " + string(resp.Body)}, nil
}

func init() { unhidra.Register(f{}) }
func main() {}
