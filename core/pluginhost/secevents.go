package pluginhost

import (
	"context"
	"errors"
	"time"

	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// securityBatch is the most events one OnSecurityEvents call carries.
const securityBatch = 500

// securityFeed delivers the security event stream to m while it runs: the
// next batch after m's durable cursor goes to OnSecurityEvents (only while
// the plugin implements it and holds security.read), and the cursor moves
// past the batch only when the call returned without error. A failed call
// (error, timeout, crash) is retried from the cursor with backoff, so every
// event arrives at least once and in id order; plugins deduplicate by id.
// New events wake the feed; an idle feed re-checks every 30s (events
// committed by other nodes).
func (m *managed) securityFeed() {
	out := m.h.o.Events
	hs := m.hooks[pb.Hook_HOOK_ON_SECURITY_EVENTS]
	var (
		cursor  int64
		loaded  bool
		backoff time.Duration
	)
	// wait blocks until wake or feedWake fires, d passes or m stops; false
	// means m stopped.
	wait := func(d time.Duration, wake <-chan struct{}) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-wake:
		case <-m.feedWake:
		case <-t.C:
		case <-m.ctx.Done():
			return false
		}
		return true
	}
	for {
		if m.finished() { // crash-disabled: nothing to deliver to until a reload replaces m
			<-m.ctx.Done()
			return
		}
		if !m.implements(pb.Hook_HOOK_ON_SECURITY_EVENTS) {
			// A (re)start or a reload (which may grant security.read)
			// pokes feedWake; stored deny rules are re-checked every 30s.
			if !wait(30*time.Second, nil) {
				return
			}
			continue
		}
		wake := out.Changed() // taken before reading: no commit after the read is missed
		var (
			n   int
			err error
		)
		if !loaded {
			cursor, err = out.Cursor(m.ctx, m.id)
			loaded = err == nil
		}
		if err == nil {
			n, err = m.deliverSecurity(out, hs, &cursor)
		}
		switch {
		case m.ctx.Err() != nil:
			return
		case err != nil:
			if !errors.Is(err, errDown) && !errors.Is(err, errBypassed) {
				m.log().Warn("security events not delivered; retrying from the cursor", "cursor", cursor, "err", err)
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			if !wait(backoff, nil) {
				return
			}
		case n == securityBatch:
			backoff = 0 // more are waiting
		default:
			backoff = 0
			if !wait(30*time.Second, wake) {
				return
			}
		}
	}
}

// deliverSecurity sends the next batch after *cursor and advances it. It
// returns how many events it delivered.
func (m *managed) deliverSecurity(out *secevent.Outbox, hs *hookState, cursor *int64) (int, error) {
	recs, err := out.List(m.ctx, store.SecurityQuery{After: *cursor, Limit: securityBatch})
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	// Ids are gap-free, so a first id past cursor+1 means the outbox pruned
	// events this plugin never acknowledged.
	batch := &pb.SecurityEventBatch{Gap: recs[0].ID != *cursor+1, Events: make([]*pb.SecurityEvent, len(recs))}
	for i, r := range recs {
		batch.Events[i] = &pb.SecurityEvent{Id: uint64(r.ID), At: r.At, Type: r.Type, Actor: r.Actor, Target: r.Target,
			TargetKind: r.TargetKind, ClientAddr: r.ClientAddr, UserAgent: r.UserAgent, Outcome: r.Outcome, Details: r.Details}
	}
	spec, _ := pb.HookSpecOf(pb.Hook_HOOK_ON_SECURITY_EVENTS)
	err = m.call(m.ctx, hs, func(ctx context.Context, c *plugin.Remote) error {
		return c.Conn.Invoke(ctx, spec.FullMethod, batch, &pb.Empty{})
	})
	if err != nil {
		return 0, err
	}
	last := recs[len(recs)-1].ID
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	err = out.Advance(ctx, m.id, last)
	cancel()
	if err != nil {
		// Delivered but not recorded: the batch comes again (at least once).
		return 0, err
	}
	*cursor = last
	if mt := m.h.o.Metrics; mt != nil {
		mt.SecurityEventsDelivered.WithLabelValues(m.id).Add(float64(len(recs)))
	}
	return len(recs), nil
}
