// Command hello is the smallest useful Unhidra plugin: it refuses messages
// containing a configured word and answers the slash command /hello.
package main

import (
	"context"
	"strings"

	"github.com/unhidra/unhidra/sdk/plugin"
)

type hello struct {
	cfg struct{ Word string } // from plugins.yaml: config: {word: darn}
}

func (h *hello) OnActivate(ctx context.Context, host *plugin.Host) error {
	if err := host.Config(&h.cfg); err != nil {
		return err
	}
	return host.RegisterCommand(ctx, &plugin.Command{Trigger: "hello", Description: "Say hello"})
}

func (h *hello) MessageWillBePosted(_ context.Context, req *plugin.MessageWillBePostedRequest) (*plugin.MessageVerdict, error) {
	if h.cfg.Word != "" && strings.Contains(strings.ToLower(req.Message.GetText()), strings.ToLower(h.cfg.Word)) {
		return nil, plugin.Reject("the word %q is not allowed here", h.cfg.Word)
	}
	return plugin.Allow(), nil
}

func (h *hello) ExecuteCommand(_ context.Context, req *plugin.CommandRequest) (*plugin.CommandResponse, error) {
	name := req.Args
	if name == "" {
		name = "world"
	}
	return &plugin.CommandResponse{Text: "Hello, " + name + "!"}, nil
}

func main() { plugin.Serve(&hello{}) }
