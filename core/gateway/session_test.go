package gateway

import (
	"io"
	"log/slog"
	"testing"

	"github.com/unhidra/unhidra/core/auth"
)

// TestPongsCoalesceButCount: unwritten pongs are replaced by the newest
// (memory stays at one frame), yet each one owed counts against the frame
// bound, so a client that pings without reading becomes a slow consumer.
// (The session has no socket, so nothing is ever written.)
func TestPongsCoalesceButCount(t *testing.T) {
	g := New(Options{QueueFrames: 16, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s := newSession(g, auth.Identity{UserID: "u"}, 1)
	if !s.Enqueue([]byte("data frame")) {
		t.Fatal("the first frame was refused")
	}
	for i := 2; i <= 16; i++ { // frames owed: the data frame and i-1 pongs
		if !s.pong([]byte{byte(i)}) {
			t.Fatalf("pong %d refused with %d frames owed", i-1, i)
		}
	}
	if len(s.queue) != 2 || s.queue[1][len(s.queue[1])-1] != 16 || s.bytes != len("data frame")+len(s.queue[1]) {
		t.Fatalf("queue holds %d frames (%d bytes); want the data frame and only the latest pong", len(s.queue), s.bytes)
	}
	if s.pong([]byte{17}) || !s.slowConsumer() {
		t.Fatal("the 17th frame owed did not make the session a slow consumer")
	}
	if len(s.queue) != 0 || s.bytes != 0 {
		t.Fatalf("a slow consumer's queue is dropped; it holds %d frames", len(s.queue))
	}
}
