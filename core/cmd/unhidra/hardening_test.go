package main

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// pingFrames is n masked WebSocket ping frames with 125-byte payloads (the
// largest a control frame may carry), ready to write in one go.
func pingFrames(n int) []byte {
	var b bytes.Buffer
	payload := bytes.Repeat([]byte("p"), 125)
	for i := 0; i < n; i++ {
		b.Write([]byte{0x89, 0x80 | 125, 0, 0, 0, 0}) // FIN+ping, masked, zero key
		b.Write(payload)
	}
	return b.Bytes()
}

// TestPingFloodIsBounded is issue 12: one signed-in session that never reads
// and writes pings as fast as it can used to grow the server by gigabytes
// (pongs were queued outside --queue-frames/--queue-bytes). Its pongs now
// count against those bounds: the session is closed as a slow consumer, the
// server's memory stays bounded, and other sessions carry on.
func TestPingFloodIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	// A short write timeout only makes the end of the flooding session come
	// sooner; nothing below depends on it.
	p := startProc(t, bin, "--data", t.TempDir(), "--write-timeout", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice, flooder := p.account(t, ctx, "alice"), p.account(t, ctx, "flooder")
	room, err := alice.CreateRoom(ctx, "calm", "private")
	if err != nil {
		t.Fatal(err)
	}
	calm, err := client.Dial(ctx, alice.WSURL(), client.Options{Token: alice.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer calm.Close()
	if _, err := calm.Send(ctx, room.ID, "before"); err != nil {
		t.Fatal(err)
	}

	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.DialContext(ctx, flooder.WSURL(), http.Header{"Authorization": {"Bearer " + flooder.Token}})
	if err != nil {
		t.Fatalf("flooder handshake: %v", err)
	}
	nc := ws.UnderlyingConn()
	defer nc.Close()
	// The baseline is taken with both sessions open, after the argon2id
	// hashes of registration and login.
	base := p.rss(t)
	const bound = 192 << 20 // the fixed server stays within a few MB of base
	flood := pingFrames(512)
	hungUp := make(chan error, 1)
	go func() {
		for {
			if _, err := nc.Write(flood); err != nil {
				hungUp <- err // the server closed the session
				return
			}
		}
	}()
	// Other sessions keep working while the flood is read.
	during := make(chan error, 1)
	go func() {
		_, err := calm.Send(ctx, room.ID, "during")
		during <- err
	}()
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for closed := false; !closed; {
		select {
		case <-hungUp:
			closed = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the server never closed the flooding session (RSS %d MB, base %d MB)", p.rss(t)>>20, base>>20)
		}
		r := p.rss(t)
		peak = max(peak, r)
		if r-base > bound {
			t.Fatalf("server RSS grew by %d MB during the ping flood (from %d MB); want < %d MB", (r-base)>>20, base>>20, bound>>20)
		}
	}
	if err := <-during; err != nil {
		t.Fatalf("send during the flood: %v", err)
	}
	p.alive(t)
	if n := p.metric(t, "unhidra_ws_slow_consumers_total"); n < 1 {
		t.Fatalf("unhidra_ws_slow_consumers_total = %v after the flooding session was closed, want ≥ 1", n)
	}
	if _, err := calm.Send(ctx, room.ID, "after"); err != nil {
		t.Fatalf("send after the flood: %v", err)
	}
	t.Logf("server RSS %d MB before the flood, peak %d MB", base>>20, peak>>20)
}
