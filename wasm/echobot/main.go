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

func (bot) ExecuteCommand(a *unhidra.CommandArgs) (*unhidra.CommandResponse, error) {
	if len(a.Args) == 0 {
		return &unhidra.CommandResponse{Text: "usage: /echo <text>"}, nil
	}
	return &unhidra.CommandResponse{Text: strings.Join(a.Args, " "), InRoom: true}, nil
}

func (bot) MessageHasBeenPosted(p *unhidra.Post) {
	if !strings.Contains(strings.ToLower(p.Text), "@echobot") {
		return
	}
	if _, err := unhidra.PostMessage(p.Room, "echo: "+p.Text); err != nil {
		unhidra.Log(unhidra.LevelWarn, "reply failed: "+err.Error())
	}
}

func init() { unhidra.Register(bot{}) }

func main() {}
