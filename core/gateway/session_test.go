package gateway

import (
	"io"
	"log/slog"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/core/auth"
)

// TestPongsCoalesceButCount: unwritten pongs are replaced by the newest
// (memory stays at one frame), yet each one owed counts against the frame
// bound, so a client that pings without reading becomes a slow consumer.
// (The session has no socket, so nothing is ever written.)
func TestPongsCoalesceButCount(t *testing.T) {
	g := New(Options{QueueFrames: 16, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s := newSession(g, auth.Identity{UserID: "u"}, 1)
	data := []byte("data frame")
	if !s.Enqueue(byte(websocket.TextMessage), data) {
		t.Fatal("the first frame was refused")
	}
	for i := 2; i <= 16; i++ { // frames owed: the data frame and i-1 pongs
		if !s.pong([]byte{byte(i)}) {
			t.Fatalf("pong %d refused with %d frames owed", i-1, i)
		}
	}
	if len(s.queue) != 2 || s.queue[1].payload[0] != 16 || s.bytes != frameLen(data)+frameLen(s.queue[1].payload) {
		t.Fatalf("queue holds %d frames (%d bytes); want the data frame and only the latest pong", len(s.queue), s.bytes)
	}
	if s.pong([]byte{17}) || !s.slowConsumer() {
		t.Fatal("the 17th frame owed did not make the session a slow consumer")
	}
	if len(s.queue) != 0 || s.bytes != 0 {
		t.Fatalf("a slow consumer's queue is dropped; it holds %d frames", len(s.queue))
	}
}

// TestAppendFrameLengths: the header grows with the payload length as RFC
// 6455 §5.2 says, and frameLen agrees with what appendFrame writes.
func TestAppendFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		p := make([]byte, n)
		f := appendFrame(nil, 0x1, p)
		hdr := len(f) - n
		want := 2
		if n >= 126 {
			want = 4
		}
		if n > 65535 {
			want = 10
		}
		if hdr != want || f[0] != 0x81 || frameLen(p) != len(f) {
			t.Errorf("payload %d: header %d bytes (first %#x, frameLen %d), want %d (0x81)", n, hdr, f[0], frameLen(p), want)
		}
	}
}
