// Command docsplugin is the process half of the "docs agree with the code"
// tests: a command whose error reaches the sender, and the KV limits probe
// that docsmodule (its WASM twin) runs too.
package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/unhidra/unhidra/sdk/plugin"
)

type docs struct{ host *plugin.Host }

func (d *docs) OnActivate(ctx context.Context, host *plugin.Host) error {
	d.host = host
	for _, t := range []string{"pfail", "pkvlimits"} {
		if err := host.RegisterCommand(ctx, &plugin.Command{Trigger: t}); err != nil {
			return err
		}
	}
	return nil
}

func (d *docs) ExecuteCommand(ctx context.Context, req *plugin.CommandRequest) (*plugin.CommandResponse, error) {
	switch req.Trigger {
	case "pfail":
		if req.Args == "" {
			return nil, errors.New("usage: /pfail <text>")
		}
		return &plugin.CommandResponse{Text: req.Args}, nil
	case "pkvlimits":
		kv := d.host.KV()
		return &plugin.CommandResponse{Text: probe(func(k string, v []byte) error { return kv.Set(ctx, k, v, 0) })}, nil
	}
	return nil, fmt.Errorf("unknown command %s", req.Trigger)
}

// probe writes at and just past the documented KV limits (keys ≤256 bytes,
// values ≤1 MiB) and reports each outcome; docsmodule has the same code.
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

func main() { plugin.Serve(&docs{}) }
