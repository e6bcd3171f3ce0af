package gateway

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/event"
)

// discardConn is a net.Conn whose writes succeed at once.
type discardConn struct {
	net.Conn
	w *bytes.Buffer // nil: discard
}

func (c discardConn) Write(p []byte) (int, error) {
	if c.w != nil {
		c.w.Write(p)
	}
	return len(p), nil
}
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) Close() error                     { return nil }

// writeQueued runs the session's writer once over what is queued, into c.
func writeQueued(s *session, c net.Conn) {
	s.mu.Lock()
	s.nc, s.writing = c, true
	s.mu.Unlock()
	s.flush()
	s.mu.Lock()
	s.nc = nil
	s.mu.Unlock()
}

// TestDeliverFramesSharedPayload: every session frames the one shared
// payload itself (text frames, RFC 6455 lengths) and the payload is never
// modified by writing it.
func TestDeliverFramesSharedPayload(t *testing.T) {
	g := New(Options{})
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("x"), n)
		ev := &event.Event{Kind: "message", Payload: payload}
		var wires [2]bytes.Buffer
		for i := range wires {
			s := newSession(g, auth.Identity{UserID: "u"}, uint64(i+1))
			if !s.Deliver(ev) {
				t.Fatalf("payload %d: Deliver refused", n)
			}
			writeQueued(s, discardConn{w: &wires[i]})
		}
		hdr := 2
		if n >= 126 {
			hdr = 4
		}
		if n > 65535 {
			hdr = 10
		}
		for i, w := range wires {
			b := w.Bytes()
			if len(b) != hdr+n || b[0] != 0x81 || !bytes.Equal(b[hdr:], payload) {
				t.Errorf("payload %d, session %d: %d bytes on the wire (first %#x), want %d (0x81) + the payload", n, i, len(b), b[0], hdr+n)
			}
		}
		if !bytes.Equal(ev.Payload, bytes.Repeat([]byte("x"), n)) {
			t.Errorf("payload %d was modified by writing it", n)
		}
	}
}

// BenchmarkAppendFrame is framing a 200-byte payload into a reused buffer,
// as the writer does for every queued frame.
func BenchmarkAppendFrame(b *testing.B) {
	p := make([]byte, 200)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendFrame(buf[:0], byte(websocket.TextMessage), p)
	}
}

// BenchmarkSessionWrite queues 64 deliveries of one shared 200-byte event
// on a session and runs its writer once: per op, the per-session cost of
// queueing, framing and writing a batch.
func BenchmarkSessionWrite(b *testing.B) {
	g := New(Options{})
	s := newSession(g, auth.Identity{UserID: "u"}, 1)
	ev := &event.Event{Kind: "message", Payload: make([]byte, 200)}
	b.ReportAllocs()
	for b.Loop() {
		for range 64 {
			s.Deliver(ev)
		}
		writeQueued(s, discardConn{})
	}
}
