package hub

import (
	"strconv"
	"sync/atomic"
	"testing"
)

type countSub struct {
	id uint64
	n  atomic.Int64
}

func (c *countSub) SessionID() uint64     { return c.id }
func (c *countSub) UserID() string        { return "u" + strconv.FormatUint(c.id, 10) }
func (c *countSub) Enqueue(f []byte) bool { c.n.Add(1); return true }

func TestPublishReachesEverySubscriberButSkipped(t *testing.T) {
	h := New()
	subs := make([]*countSub, 5)
	for i := range subs {
		subs[i] = &countSub{id: uint64(i + 1)}
		h.Subscribe("r", subs[i])
	}
	if n := h.Publish("r", Frame([]byte(`{}`)), 3); n != 4 {
		t.Fatalf("Publish reached %d subscribers, want 4", n)
	}
	for _, s := range subs {
		want := int64(1)
		if s.id == 3 {
			want = 0
		}
		if got := s.n.Load(); got != want {
			t.Errorf("session %d got %d frames, want %d", s.id, got, want)
		}
	}
}

func TestSessionLookup(t *testing.T) {
	h := New()
	a, b := &countSub{id: 7}, &countSub{id: 7 + shardCount} // same shard
	h.Connect(a)
	h.Connect(b)
	if h.Session(7) != a || h.Session(7+shardCount) != b || h.Session(8) != nil {
		t.Fatal("Session does not find exactly the connected sessions")
	}
	h.Disconnect(a)
	if h.Session(7) != nil || h.Session(7+shardCount) != b {
		t.Fatal("Session still finds a disconnected session, or lost another")
	}
}

func TestAppendFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := AppendFrame(nil, 0x1, make([]byte, n))
		hdr := len(f) - n
		want := 2
		if n >= 126 {
			want = 4
		}
		if n > 65535 {
			want = 10
		}
		if hdr != want || f[0] != 0x81 {
			t.Errorf("payload %d: header %d bytes (first %#x), want %d (0x81)", n, hdr, f[0], want)
		}
	}
}

// BenchmarkFrame is the per-fan-out encode cost of wrapping a payload.
func BenchmarkFrame(b *testing.B) {
	p := make([]byte, 200)
	b.ReportAllocs()
	for b.Loop() {
		_ = Frame(p)
	}
}

// BenchmarkPublish1000 fans one frame out to a room of 1,000 sessions; the
// per-op time divided by 1,000 is the hub's share of a delivery.
func BenchmarkPublish1000(b *testing.B) {
	h := New()
	for i := range 1000 {
		h.Subscribe("room", &countSub{id: uint64(i + 1)})
	}
	f := Frame(make([]byte, 200))
	b.ReportAllocs()
	for b.Loop() {
		h.Publish("room", f, 0)
	}
}
