// Command counter is a WASM plugin that counts messages per room in KV and
// answers "/count" with the room's total. Counting uses compare-and-set, so
// concurrent instances never lose an increment.
package main

import (
	"strconv"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type counter struct{}

func key(room string) string { return "room:" + room }

func (counter) MessageHasBeenPosted(ev *unhidra.MessageEvent) error {
	room := ev.Message.GetRoom()
	for attempt := 0; attempt < 16; attempt++ {
		old, found, err := unhidra.KVGet(key(room))
		if err != nil {
			unhidra.Log(unhidra.LevelError, "kv get: "+err.Error())
			return err
		}
		n := 0
		if found {
			n, _ = strconv.Atoi(string(old))
		} else {
			old = nil
		}
		ok, err := unhidra.KVCompareAndSet(key(room), old, []byte(strconv.Itoa(n+1)), 0)
		if err != nil {
			unhidra.Log(unhidra.LevelError, "kv cas: "+err.Error())
			return err
		}
		if ok {
			return nil
		}
	}
	unhidra.Log(unhidra.LevelWarn, "gave up counting after 16 CAS conflicts")
	return nil
}

func (counter) Commands() []unhidra.Command {
	return []unhidra.Command{{Trigger: "count", Description: "How many messages this room has seen"}}
}

func (counter) ExecuteCommand(req *unhidra.CommandRequest) (*unhidra.CommandResponse, error) {
	v, found, err := unhidra.KVGet(key(req.Room))
	if err != nil {
		return nil, err
	}
	n := "0"
	if found {
		n = string(v)
	}
	return &unhidra.CommandResponse{Text: "this room has seen " + n + " messages"}, nil
}

func init() { unhidra.Register(counter{}) }

func main() {}
