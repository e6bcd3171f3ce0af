// Command echobot is a WASM plugin with a slash command and a mention
// reply: "/echo text" posts text to the room; a message mentioning
// @echobot gets an answer through the post capability.
package main

import (
	"strings"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type bot struct{}

func (bot) Commands() []unhidra.Command {
	return []unhidra.Command{{Trigger: "echo", Description: "Repeat text in the room", Hint: "<text>"}}
}

func (bot) ExecuteCommand(req *unhidra.CommandRequest) (*unhidra.CommandResponse, error) {
	if req.Args == "" {
		return &unhidra.CommandResponse{Text: "usage: /echo <text>"}, nil
	}
	return &unhidra.CommandResponse{Text: req.Args, Visibility: unhidra.Visibility_VISIBILITY_IN_ROOM}, nil
}

func (bot) MessageHasBeenPosted(ev *unhidra.MessageEvent) error {
	m := ev.Message
	if m == nil || !strings.Contains(strings.ToLower(m.Text), "@echobot") {
		return nil
	}
	if _, err := unhidra.PostMessage(m.Room, "echo: "+m.Text); err != nil {
		unhidra.Log(unhidra.LevelWarn, "reply failed: "+err.Error())
	}
	return nil
}

func init() { unhidra.Register(bot{}) }

func main() {}
