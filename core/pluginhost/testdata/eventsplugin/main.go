// Command eventsplugin is the membership and lifecycle test plugin of the
// events work (membership_test.go), run as a real process. It speaks the
// contract at the wire (pb.PluginServer), so it depends on plugin.proto
// alone: it declares every membership, reaction, user and room lifecycle
// hook and writes each request it receives to stderr as one line
//
//	OBSERVED <HookName> <the request as protojson, proto field names>
//
// which the host logs (tagged with the plugin id) and the test reads.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

func main() {
	goplugin.Serve(&goplugin.ServeConfig{HandshakeConfig: plugin.Handshake,
		Plugins:    goplugin.PluginSet{plugin.PluginName: &wire{}},
		GRPCServer: goplugin.DefaultGRPCServer})
}

type wire struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (wire) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, observer{})
	return nil
}

func (wire) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plugin side only")
}

type observer struct{ pb.UnimplementedPluginServer }

var empty = &pb.Empty{}

func observe(hook string, req proto.Message) (*pb.Empty, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "OBSERVED %s %s\n", hook, b)
	return empty, nil
}

func (observer) Handshake(context.Context, *pb.HandshakeRequest) (*pb.HandshakeResponse, error) {
	return &pb.HandshakeResponse{ContractVersion: uint32(pb.Version_CONTRACT_VERSION), Sdk: "eventsplugin", Hooks: []pb.Hook{
		pb.Hook_HOOK_USER_HAS_JOINED_ROOM, pb.Hook_HOOK_USER_HAS_LEFT_ROOM,
		pb.Hook_HOOK_REACTION_HAS_BEEN_ADDED, pb.Hook_HOOK_REACTION_HAS_BEEN_REMOVED,
		pb.Hook_HOOK_USER_HAS_BEEN_CREATED, pb.Hook_HOOK_USER_HAS_BEEN_UPDATED, pb.Hook_HOOK_USER_HAS_BEEN_DEACTIVATED,
		pb.Hook_HOOK_ROOM_HAS_BEEN_CREATED, pb.Hook_HOOK_ROOM_HAS_BEEN_UPDATED,
	}}, nil
}

func (observer) OnActivate(context.Context, *pb.ActivateRequest) (*pb.Empty, error) {
	return empty, nil
}
func (observer) OnDeactivate(context.Context, *pb.Empty) (*pb.Empty, error) { return empty, nil }

func (observer) UserHasJoinedRoom(_ context.Context, r *pb.RoomEvent) (*pb.Empty, error) {
	return observe("UserHasJoinedRoom", r)
}
func (observer) UserHasLeftRoom(_ context.Context, r *pb.RoomEvent) (*pb.Empty, error) {
	return observe("UserHasLeftRoom", r)
}
func (observer) ReactionHasBeenAdded(_ context.Context, r *pb.ReactionEvent) (*pb.Empty, error) {
	return observe("ReactionHasBeenAdded", r)
}
func (observer) ReactionHasBeenRemoved(_ context.Context, r *pb.ReactionEvent) (*pb.Empty, error) {
	return observe("ReactionHasBeenRemoved", r)
}
func (observer) UserHasBeenCreated(_ context.Context, r *pb.UserLifecycleEvent) (*pb.Empty, error) {
	return observe("UserHasBeenCreated", r)
}
func (observer) UserHasBeenUpdated(_ context.Context, r *pb.UserLifecycleEvent) (*pb.Empty, error) {
	return observe("UserHasBeenUpdated", r)
}
func (observer) UserHasBeenDeactivated(_ context.Context, r *pb.UserLifecycleEvent) (*pb.Empty, error) {
	return observe("UserHasBeenDeactivated", r)
}
func (observer) RoomHasBeenCreated(_ context.Context, r *pb.RoomLifecycleEvent) (*pb.Empty, error) {
	return observe("RoomHasBeenCreated", r)
}
func (observer) RoomHasBeenUpdated(_ context.Context, r *pb.RoomLifecycleEvent) (*pb.Empty, error) {
	return observe("RoomHasBeenUpdated", r)
}
