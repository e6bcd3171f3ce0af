package pluginhost

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/store"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// PublishEvent sends an event of the calling plugin's namespace (the core
// sets the plugin id, so a plugin cannot speak for another) to exactly one
// target. A room or user that does not exist is NOT_FOUND; a user or session
// without a live session here is delivered to nobody, which is no error.
func (a *hostAPI) PublishEvent(ctx context.Context, r *pb.PublishEventRequest) (*pb.PublishEventResponse, error) {
	targets := 0
	for _, set := range []bool{r.Room != "", r.UserId != "", r.SessionId != 0} {
		if set {
			targets++
		}
	}
	if targets != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "give exactly one target (room, user_id or session_id), not %d", targets)
	}
	if !protocol.ValidPluginName(r.Name) {
		return nil, status.Errorf(codes.InvalidArgument, "event name %q: use 1–64 of a-z, 0-9, '.', '_', '-'", r.Name)
	}
	if err := checkData(r.DataJson); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "event %q: %v", r.Name, err)
	}
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	if a.m.h.chat == nil {
		return nil, status.Error(codes.Unavailable, "chat service not attached")
	}
	what, id := "", ""
	switch {
	case r.Room != "":
		what, id = "room", r.Room
		_, err = st.RoomByID(ctx, r.Room)
	case r.UserId != "":
		what, id = "user", r.UserId
		_, err = st.UserByID(ctx, r.UserId)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "event %q: %s %q not found", r.Name, what, id)
	}
	if err != nil {
		return nil, grpcErr(err)
	}
	n, err := a.m.h.chat.PublishPluginEvent(chat.PluginEvent{Plugin: a.m.id, Name: r.Name, Room: r.Room, User: r.UserId,
		Session: r.SessionId, Data: r.DataJson})
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pb.PublishEventResponse{Delivered: int32(n)}, nil
}
