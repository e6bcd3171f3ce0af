package plugin

// TEMPORARY (v2-secevents): the OnSecurityEvents hook in the shape the
// generated SDK (hooks.gen.go, types.gen.go of the v2-sdk work) declares it.
// Delete this file when that lands: the generated declarations replace it.

import (
	"context"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// SecurityEvent is one entry of the core's security event stream.
type SecurityEvent = pb.SecurityEvent

// SecurityEventBatch is what OnSecurityEvents receives.
type SecurityEventBatch = pb.SecurityEventBatch

// OnSecurityEventsHook is implemented by plugins that read the security
// event stream (grant security.read). The host keeps the plugin's cursor and
// moves it past a batch only when the hook returned without error: a plugin
// that crashes or restarts gets the batch again (deduplicate by event id).
type OnSecurityEventsHook interface {
	OnSecurityEvents(ctx context.Context, req *SecurityEventBatch) error
}

func (s *server) OnSecurityEvents(ctx context.Context, r *pb.SecurityEventBatch) (*pb.Empty, error) {
	if h, ok := s.impl.(OnSecurityEventsHook); ok {
		return &pb.Empty{}, hookErr(h.OnSecurityEvents(ctx, r))
	}
	return &pb.Empty{}, nil
}
