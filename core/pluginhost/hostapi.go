package pluginhost

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// hostCallCeiling bounds every host-API call whatever the plugin's context.
const hostCallCeiling = 10 * time.Second

// authorize checks every host-API call against the plugin's grants (through
// the Authorizer) before it runs; refusals are logged and counted.
func (m *managed) authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	// The grant is the rpc's `host_call` option in plugin.proto; a method
	// that declares none is refused: new calls must name their grant.
	capability, ok := pb.HostCallGrant(info.FullMethod)
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "host call %s is not available to plugins", info.FullMethod)
	}
	if capability != "" {
		err := m.h.o.Authorizer.AuthorizePlugin(ctx, AuthzRequest{Plugin: m.id, Capability: capability, Grants: m.spec.Load().Grants})
		if err != nil {
			m.log().Warn("plugin host call denied", "call", info.FullMethod, "grant", capability, "err", err)
			if mt := m.h.o.Metrics; mt != nil {
				mt.PluginDenied.WithLabelValues(m.id, capability).Inc()
			}
			return nil, status.Errorf(codes.PermissionDenied, "%s needs grant %q, which plugins.yaml does not give plugin %s", info.FullMethod, capability, m.id)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, hostCallCeiling)
	defer cancel()
	// What the call changes is acted by the plugin (security events).
	return handler(secevent.WithActor(ctx, "plugin:"+m.id), req)
}

// hostAPI serves the Host service to one plugin.
type hostAPI struct {
	pb.UnimplementedHostServer
	m *managed
}

// grpcErr maps core errors to gRPC status codes for the plugin.
func grpcErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return status.Error(codes.NotFound, "not found")
	}
	var (
		input  *auth.InputError
		locked *auth.LockedError
	)
	switch {
	case errors.As(err, &input):
		return status.Error(codes.InvalidArgument, input.Msg)
	case errors.As(err, &locked):
		return status.Error(codes.ResourceExhausted, locked.Error())
	case errors.Is(err, authz.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, auth.ErrNotFound), errors.Is(err, authz.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, auth.ErrTaken):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, auth.ErrDeactivated):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	e := chat.AsError(err)
	code := codes.Internal
	switch e.Code {
	case protocol.CodeBadRequest:
		code = codes.InvalidArgument
	case protocol.CodeNotFound:
		code = codes.NotFound
	case protocol.CodeForbidden:
		code = codes.PermissionDenied
	case protocol.CodeTooLarge:
		code = codes.ResourceExhausted
	case protocol.CodeConflict:
		code = codes.AlreadyExists
	case protocol.CodeUnavailable, protocol.CodeRateLimited:
		code = codes.Unavailable
	}
	return status.Error(code, e.Message)
}

func (a *hostAPI) Log(_ context.Context, r *pb.LogRequest) (*pb.Empty, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(r.Level)); err != nil {
		lvl = slog.LevelInfo
	}
	args := make([]any, 0, 2*len(r.Attrs)+2)
	for k, v := range r.Attrs {
		args = append(args, k, v)
	}
	args = append(args, "stream", "api")
	a.m.log().Log(context.Background(), lvl, r.Message, args...)
	return &pb.Empty{}, nil
}

var triggerRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

func (a *hostAPI) RegisterCommand(_ context.Context, c *pb.Command) (*pb.Empty, error) {
	if !triggerRE.MatchString(c.Trigger) {
		return nil, status.Errorf(codes.InvalidArgument, "command trigger %q: use 1–32 of a-z, 0-9, '-', '_'", c.Trigger)
	}
	if err := a.m.h.registerCommand(a.m, c); err != nil {
		return nil, status.Error(codes.AlreadyExists, err.Error())
	}
	return &pb.Empty{}, nil
}

func (a *hostAPI) PostMessage(ctx context.Context, r *pb.PostMessageRequest) (*pb.Message, error) {
	if a.m.h.chat == nil {
		return nil, status.Error(codes.Unavailable, "chat service not attached")
	}
	type res struct {
		a   chat.Ack
		err error
	}
	ch := make(chan res, 1)
	a.m.h.chat.SendAs(ctx, a.m.bot, chat.SendRequest{Room: r.Room, Text: r.Text, Thread: r.Thread, Meta: r.MetaJson},
		func(ack chat.Ack, err error) { ch <- res{ack, err} })
	select {
	case out := <-ch:
		if out.err != nil {
			return nil, grpcErr(out.err)
		}
		return &pb.Message{Id: out.a.ID, Room: out.a.Room, Sender: a.m.bot, Text: r.Text, Thread: r.Thread,
			MetaJson: r.MetaJson, Seq: out.a.Seq, Ts: out.a.TS}, nil
	case <-ctx.Done():
		return nil, status.Error(codes.DeadlineExceeded, "timed out waiting for commit")
	}
}

func (a *hostAPI) store() (*store.Store, error) {
	if a.m.h.o.Store == nil {
		return nil, status.Error(codes.Unavailable, "no database")
	}
	return a.m.h.o.Store, nil
}

func (a *hostAPI) GetUser(ctx context.Context, r *pb.GetUserRequest) (*pb.User, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	var u store.User
	switch {
	case r.Id != "":
		u, err = st.UserByID(ctx, r.Id)
	case r.Username != "":
		u, err = st.UserByLogin(ctx, strings.ToLower(r.Username))
	default:
		return nil, status.Error(codes.InvalidArgument, "give id or username")
	}
	if err != nil {
		return nil, grpcErr(err)
	}
	return userPB(u), nil
}

// userPB is an account as plugins see it.
func userPB(u store.User) *pb.User {
	out := &pb.User{Id: u.ID, Username: u.Username, Role: u.Role, Deactivated: u.DeactivatedAt != 0, CreatedAt: u.CreatedAt,
		DisplayName: u.DisplayName}
	if u.Email != nil {
		out.Email = *u.Email
	}
	if u.ExternalID != nil {
		out.ExternalId = *u.ExternalID
	}
	return out
}

func (a *hostAPI) GetRoom(ctx context.Context, r *pb.GetRoomRequest) (*pb.Room, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	room, err := st.RoomByID(ctx, r.Id)
	if err != nil {
		return nil, grpcErr(err)
	}
	return roomPB(room), nil
}

func (a *hostAPI) ListMembers(ctx context.Context, r *pb.GetRoomRequest) (*pb.ListMembersResponse, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	if _, err := st.RoomByID(ctx, r.Id); err != nil {
		return nil, grpcErr(err)
	}
	ms, err := st.Members(ctx, r.Id)
	if err != nil {
		return nil, grpcErr(err)
	}
	out := &pb.ListMembersResponse{Members: make([]*pb.Member, len(ms))}
	for i, mb := range ms {
		out.Members[i] = &pb.Member{UserId: mb.UserID, Role: mb.Role}
	}
	return out, nil
}

func (a *hostAPI) KVGet(ctx context.Context, r *pb.KVGetRequest) (*pb.KVGetResponse, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	v, err := st.KVGet(ctx, a.m.id, r.Key)
	if errors.Is(err, store.ErrNotFound) {
		return &pb.KVGetResponse{}, nil
	}
	if err != nil {
		return nil, grpcErr(err)
	}
	return &pb.KVGetResponse{Found: true, Value: v}, nil
}

func (a *hostAPI) KVSet(ctx context.Context, r *pb.KVSetRequest) (*pb.Empty, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	return &pb.Empty{}, grpcErr(st.KVSet(ctx, a.m.id, r.Key, r.Value, r.TtlMs))
}

func (a *hostAPI) KVCompareAndSet(ctx context.Context, r *pb.KVCompareAndSetRequest) (*pb.KVCompareAndSetResponse, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	ok, err := st.KVCompareAndSet(ctx, a.m.id, r.Key, r.OldValue, r.OldAbsent, r.NewValue, r.TtlMs)
	if err != nil {
		return nil, grpcErr(err)
	}
	return &pb.KVCompareAndSetResponse{Swapped: ok}, nil
}

func (a *hostAPI) KVDelete(ctx context.Context, r *pb.KVDeleteRequest) (*pb.Empty, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	return &pb.Empty{}, grpcErr(st.KVDelete(ctx, a.m.id, r.Key))
}

func (a *hostAPI) KVList(ctx context.Context, r *pb.KVListRequest) (*pb.KVListResponse, error) {
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	rows, err := st.KVList(ctx, a.m.id, r.Prefix, r.After, int(r.Limit))
	if err != nil {
		return nil, grpcErr(err)
	}
	out := &pb.KVListResponse{Entries: make([]*pb.KVEntry, len(rows))}
	for i, row := range rows {
		out.Entries[i] = &pb.KVEntry{Key: row.Key, Value: row.Value}
	}
	return out, nil
}
