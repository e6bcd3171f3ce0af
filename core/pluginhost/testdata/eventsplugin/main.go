// Command eventsplugin is the membership and lifecycle test plugin of the
// events work (membership_test.go), run as a real process on the generated
// SDK: it implements every membership, reaction, user and room lifecycle
// hook and writes each request it receives to stderr as one line
//
//	OBSERVED <HookName> <the request as protojson, proto field names>
//
// which the host logs (tagged with the plugin id) and the test reads.
package main

import (
	"context"
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/unhidra/unhidra/sdk/plugin"
)

type observer struct{}

func observe(hook string, req proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(req)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "OBSERVED %s %s\n", hook, b)
	return nil
}

func (observer) UserHasJoinedRoom(_ context.Context, r *plugin.RoomEvent) error {
	return observe("UserHasJoinedRoom", r)
}
func (observer) UserHasLeftRoom(_ context.Context, r *plugin.RoomEvent) error {
	return observe("UserHasLeftRoom", r)
}
func (observer) ReactionHasBeenAdded(_ context.Context, r *plugin.ReactionEvent) error {
	return observe("ReactionHasBeenAdded", r)
}
func (observer) ReactionHasBeenRemoved(_ context.Context, r *plugin.ReactionEvent) error {
	return observe("ReactionHasBeenRemoved", r)
}
func (observer) UserHasBeenCreated(_ context.Context, r *plugin.UserLifecycleEvent) error {
	return observe("UserHasBeenCreated", r)
}
func (observer) UserHasBeenUpdated(_ context.Context, r *plugin.UserLifecycleEvent) error {
	return observe("UserHasBeenUpdated", r)
}
func (observer) UserHasBeenDeactivated(_ context.Context, r *plugin.UserLifecycleEvent) error {
	return observe("UserHasBeenDeactivated", r)
}
func (observer) RoomHasBeenCreated(_ context.Context, r *plugin.RoomLifecycleEvent) error {
	return observe("RoomHasBeenCreated", r)
}
func (observer) RoomHasBeenUpdated(_ context.Context, r *plugin.RoomLifecycleEvent) error {
	return observe("RoomHasBeenUpdated", r)
}

func main() { plugin.Serve(observer{}) }
