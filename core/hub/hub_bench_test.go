package hub

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/unhidra/unhidra/core/event"
)

type countSub struct {
	id   uint64
	user string
	n    atomic.Int64
	last atomic.Pointer[event.Event]
}

func (c *countSub) SessionID() uint64 { return c.id }
func (c *countSub) UserID() string {
	if c.user != "" {
		return c.user
	}
	return "u" + strconv.FormatUint(c.id, 10)
}
func (c *countSub) Deliver(ev *event.Event) bool { c.n.Add(1); c.last.Store(ev); return true }

func TestPublishReachesEverySubscriberButSkipped(t *testing.T) {
	h := New()
	subs := make([]*countSub, 5)
	for i := range subs {
		subs[i] = &countSub{id: uint64(i + 1)}
		h.Subscribe("r", subs[i])
	}
	ev := &event.Event{Kind: "message", Room: "r", Payload: []byte(`{}`)}
	if n := h.PublishRoom(ev, 3); n != 4 {
		t.Fatalf("PublishRoom reached %d subscribers, want 4", n)
	}
	for _, s := range subs {
		want := int64(1)
		if s.id == 3 {
			want = 0
		}
		if got := s.n.Load(); got != want {
			t.Errorf("session %d got %d events, want %d", s.id, got, want)
		}
		if want == 1 && s.last.Load() != ev {
			t.Errorf("session %d got a different event than the one published (a copy?)", s.id)
		}
	}
}

// TestPublishUserAndSession: a user's sessions, and one session by id,
// reach exactly the connected subscribers they name; a session that
// disconnected is no longer reachable.
func TestPublishUserAndSession(t *testing.T) {
	h := New()
	a1 := &countSub{id: h.NewSessionID(), user: "alice"}
	a2 := &countSub{id: h.NewSessionID(), user: "alice"}
	b := &countSub{id: h.NewSessionID(), user: "bob"}
	for _, s := range []*countSub{a1, a2, b} {
		h.Connect(s)
	}
	ev := &event.Event{Kind: "plugin.event", Payload: []byte(`{}`)}
	if n := h.PublishUser("alice", ev); n != 2 || a1.n.Load() != 1 || a2.n.Load() != 1 || b.n.Load() != 0 {
		t.Fatalf("PublishUser(alice) = %d; deliveries a1=%d a2=%d b=%d", n, a1.n.Load(), a2.n.Load(), b.n.Load())
	}
	if n := h.PublishSession(b.id, ev); n != 1 || b.n.Load() != 1 || a1.n.Load() != 1 {
		t.Fatalf("PublishSession(b) = %d; deliveries a1=%d b=%d", n, a1.n.Load(), b.n.Load())
	}
	c := &countSub{id: b.id + shardCount, user: "carol"} // b's shard
	h.Connect(c)
	h.Disconnect(b)
	if n := h.PublishSession(b.id, ev); n != 0 || b.n.Load() != 1 {
		t.Fatalf("PublishSession after Disconnect = %d, deliveries %d", n, b.n.Load())
	}
	if n := h.PublishSession(c.id, ev); n != 1 || c.n.Load() != 1 {
		t.Fatalf("PublishSession to a session of the same shard = %d, deliveries %d", n, c.n.Load())
	}
	if n := h.PublishSession(0, ev); n != 0 {
		t.Fatalf("PublishSession(0) = %d", n)
	}
}

// benchSub only counts, as the subscriber of the benchmark before events did.
type benchSub struct {
	id uint64
	n  atomic.Int64
}

func (c *benchSub) SessionID() uint64         { return c.id }
func (c *benchSub) UserID() string            { return "u" + strconv.FormatUint(c.id, 10) }
func (c *benchSub) Deliver(*event.Event) bool { c.n.Add(1); return true }

// BenchmarkPublish1000 fans one event out to a room of 1,000 sessions; the
// per-op time divided by 1,000 is the hub's share of a delivery.
func BenchmarkPublish1000(b *testing.B) {
	h := New()
	for i := range 1000 {
		h.Subscribe("room", &benchSub{id: uint64(i + 1)})
	}
	ev := &event.Event{Kind: "message", Room: "room", Payload: make([]byte, 200)}
	b.ReportAllocs()
	for b.Loop() {
		h.PublishRoom(ev, 0)
	}
}
