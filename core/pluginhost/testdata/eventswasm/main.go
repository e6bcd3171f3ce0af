// Command eventswasm is the WASM twin of eventsplugin (membership_test.go),
// on the generated WASM SDK: it implements every membership, reaction, user
// and room lifecycle hook and prints each input it receives as one line
//
//	OBSERVED <HookName> <the input as JSON, proto field names>
//
// to stdout, which the host logs (tagged with the plugin id) and the test
// reads.
package main

import (
	"encoding/json"
	"fmt"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type observer struct{}

func observe(hook string, req any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	fmt.Printf("OBSERVED %s %s\n", hook, b)
	return nil
}

func (observer) UserHasJoinedRoom(r *unhidra.RoomEvent) error {
	return observe("UserHasJoinedRoom", r)
}
func (observer) UserHasLeftRoom(r *unhidra.RoomEvent) error { return observe("UserHasLeftRoom", r) }
func (observer) ReactionHasBeenAdded(r *unhidra.ReactionEvent) error {
	return observe("ReactionHasBeenAdded", r)
}
func (observer) ReactionHasBeenRemoved(r *unhidra.ReactionEvent) error {
	return observe("ReactionHasBeenRemoved", r)
}
func (observer) UserHasBeenCreated(r *unhidra.UserLifecycleEvent) error {
	return observe("UserHasBeenCreated", r)
}
func (observer) UserHasBeenUpdated(r *unhidra.UserLifecycleEvent) error {
	return observe("UserHasBeenUpdated", r)
}
func (observer) UserHasBeenDeactivated(r *unhidra.UserLifecycleEvent) error {
	return observe("UserHasBeenDeactivated", r)
}
func (observer) RoomHasBeenCreated(r *unhidra.RoomLifecycleEvent) error {
	return observe("RoomHasBeenCreated", r)
}
func (observer) RoomHasBeenUpdated(r *unhidra.RoomLifecycleEvent) error {
	return observe("RoomHasBeenUpdated", r)
}

func init() { unhidra.Register(observer{}) }
func main() {}
