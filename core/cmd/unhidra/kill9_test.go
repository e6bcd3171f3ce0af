package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// TestKill9 is "Done when" 3: a separate server process receives N pipelined
// sends; acks are counted; the process is killed with SIGKILL mid-stream and
// restarted on the same data; every acked message is there, in order, with
// gap-free seqs and no duplicates; a client's sync from its last seq gets
// exactly the rest; re-sending the unacked refs completes the set without
// duplicating any committed message.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.DSN(t)
			data := t.TempDir()
			args := []string{"--data", data}
			if dsn != "" {
				args = append(args, "--db", dsn)
			}
			kill9(t, bin, args)
		})
	}
}

const (
	kill9Sends = 2000
	killAfter  = 400 // acks seen before SIGKILL
	// watcherLeaves is the seq after which the watching client disconnects.
	watcherLeaves = 100
)

func kill9(t *testing.T, bin string, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startProc(t, bin, args...)
	api := &client.API{Base: p.base}
	if _, err := api.Register(ctx, "writer", "password-writer", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Login(ctx, "writer", "password-writer"); err != nil {
		t.Fatal(err)
	}
	watcherAPI := &client.API{Base: p.base}
	if _, err := watcherAPI.Register(ctx, "watcher", "password-watcher", ""); err != nil {
		t.Fatal(err)
	}
	wt, err := watcherAPI.Login(ctx, "watcher", "password-watcher")
	if err != nil {
		t.Fatal(err)
	}
	room, err := api.CreateRoom(ctx, "crash", "private", "watcher")
	if err != nil {
		t.Fatal(err)
	}
	w, err := client.Dial(ctx, api.WSURL(), client.Options{Token: api.Token, Events: kill9Sends + 100})
	if err != nil {
		t.Fatal(err)
	}
	// The watcher only receives; its last seen seq is what it syncs from.
	watcher, err := client.Dial(ctx, api.WSURL(), client.Options{Token: wt.AccessToken, Events: kill9Sends + 100})
	if err != nil {
		t.Fatal(err)
	}

	// The watcher disconnects after some messages, like a phone going
	// offline; after the restart it syncs from the last seq it saw.
	watcherGone := make(chan int64, 1)
	go func() {
		var seen int64 // the last seq this client processed
		for ev := range watcher.Events() {
			if ev.Type == protocol.TypeMessage {
				if ev.Seq != seen+1 {
					t.Errorf("watcher got seq %d after %d", ev.Seq, seen)
				}
				seen = ev.Seq
			}
			if seen >= watcherLeaves {
				break
			}
		}
		_ = watcher.Close()
		watcherGone <- seen
	}()

	// Pipeline every send; acks arrive on Events because Write does not wait.
	go func() {
		for i := 0; i < kill9Sends; i++ {
			txt := fmt.Sprintf("m-%04d", i)
			if err := w.Write(protocol.ClientFrame{Type: protocol.TypeSend, Room: room.ID, Text: &txt, Ref: "r" + strconv.Itoa(i)}); err != nil {
				return // the server is gone
			}
		}
	}()
	acked := map[int]protocol.Frame{} // send index → ack
	killed := false
	for ev := range w.Events() {
		if ev.Type == protocol.TypeError {
			t.Fatalf("send failed before the kill: %+v", ev)
		}
		if ev.Type != protocol.TypeAck {
			continue
		}
		i, err := strconv.Atoi(strings.TrimPrefix(ev.Ref, "r"))
		if err != nil {
			t.Fatalf("ack with foreign ref %+v", ev)
		}
		acked[i] = ev
		if !killed && len(acked) >= killAfter {
			p.kill()
			killed = true
		}
	}
	if !killed {
		t.Fatalf("all %d acks arrived before the kill; raise kill9Sends", len(acked))
	}
	watcherLast := <-watcherGone
	_ = w.Close()

	// Acks must already be in send order with seq = index+1.
	for i := 0; i < len(acked); i++ {
		a, ok := acked[i]
		if !ok {
			t.Fatalf("ack %d missing while %d acks arrived (acks out of order)", i, len(acked))
		}
		if a.Seq != int64(i+1) {
			t.Fatalf("ack %d has seq %d", i, a.Seq)
		}
	}

	p2 := startProc(t, bin, args...)
	api.Base = p2.base
	watcherAPI.Base = p2.base
	if _, err := api.Login(ctx, "writer", "password-writer"); err != nil {
		t.Fatal(err)
	}
	wt, err = watcherAPI.Login(ctx, "watcher", "password-watcher")
	if err != nil {
		t.Fatal(err)
	}
	hist := fullHistory(t, ctx, api, room.ID)
	checkLog(t, hist)
	if len(hist) < len(acked) {
		t.Fatalf("history has %d messages after restart, %d were acked", len(hist), len(acked))
	}
	for i, a := range acked {
		m := hist[i]
		if m.ID != a.ID || m.Seq != a.Seq || m.Text != fmt.Sprintf("m-%04d", i) {
			t.Fatalf("acked send %d (%+v) is stored as %+v", i, a, m)
		}
	}
	t.Logf("%d sends pipelined, %d acked before SIGKILL, %d committed (recovered) after restart; watcher had seen seq %d",
		kill9Sends, len(acked), len(hist), watcherLast)

	// The watcher reconnects and syncs from its last seq: exactly the rest.
	watcher, err = client.Dial(ctx, api.WSURL(), client.Options{Token: wt.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	got, err := watcher.Sync(ctx, room.ID, watcherLast)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(hist)-int(watcherLast) {
		t.Fatalf("sync from %d returned %d events, want %d", watcherLast, len(got), len(hist)-int(watcherLast))
	}
	for i, f := range got {
		m := hist[int(watcherLast)+i]
		if f.Type != protocol.TypeMessage || f.Seq != m.Seq || f.ID != m.ID || f.Text == nil || *f.Text != m.Text {
			t.Fatalf("sync event %d = %+v, want %+v", i, f, m)
		}
	}

	// Re-send every unacked ref: committed ones come back as duplicates,
	// the rest are stored once. The log ends with exactly N messages.
	w, err = client.Dial(ctx, api.WSURL(), client.Options{Token: api.Token})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	dups := 0
	for i := len(acked); i < kill9Sends; i++ {
		a, err := w.Send(ctx, room.ID, fmt.Sprintf("m-%04d", i), client.SendOptions{Ref: "r" + strconv.Itoa(i)})
		if err != nil {
			t.Fatalf("re-send %d: %v", i, err)
		}
		if a.Duplicate {
			dups++
			if i >= len(hist) || a.ID != hist[i].ID {
				t.Fatalf("re-send %d reported duplicate of %s, history has %d messages", i, a.ID, len(hist))
			}
		}
	}
	if dups != len(hist)-len(acked) {
		t.Fatalf("%d re-sends were duplicates; %d messages were committed without an ack", dups, len(hist)-len(acked))
	}
	final := fullHistory(t, ctx, api, room.ID)
	checkLog(t, final)
	if len(final) != kill9Sends {
		t.Fatalf("after re-sending, history has %d messages, want %d", len(final), kill9Sends)
	}
}

// fullHistory pages through a room's messages in seq order.
func fullHistory(t *testing.T, ctx context.Context, api *client.API, room string) []protocol.Message {
	t.Helper()
	var all []protocol.Message
	var after int64
	for {
		page, err := api.HistoryFrom(ctx, room, after, 200)
		if err != nil {
			t.Fatalf("history after %d: %v", after, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

// checkLog asserts seqs 1..n without gaps, texts in send order, no
// duplicate ids or texts.
func checkLog(t *testing.T, ms []protocol.Message) {
	t.Helper()
	ids := map[string]bool{}
	for i, m := range ms {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d: gap or disorder", i, m.Seq)
		}
		if want := fmt.Sprintf("m-%04d", i); m.Text != want {
			t.Fatalf("seq %d holds %q, want %q (order or duplicate)", m.Seq, m.Text, want)
		}
		if ids[m.ID] {
			t.Fatalf("duplicate message id %s", m.ID)
		}
		ids[m.ID] = true
	}
}

// TestSIGTERMDrains: SIGTERM to the real binary drains — a connected client
// gets goodbye{shutdown, reconnect_after_ms>0} after the messages already
// queued for it — and the process exits 0 with every acked message stored.
func TestSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startProc(t, bin, "--data", data)
	api := &client.API{Base: p.base}
	if _, err := api.Register(ctx, "ann", "password-ann", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Login(ctx, "ann", "password-ann"); err != nil {
		t.Fatal(err)
	}
	room, err := api.CreateRoom(ctx, "term", "private")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, api.WSURL(), client.Options{Token: api.Token})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := c.Send(ctx, room.ID, fmt.Sprintf("m-%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for ev := range c.Events() { // closed after the goodbye and close
		if ev.Type == protocol.TypeMessage {
			seqs = append(seqs, ev.Seq)
		}
	}
	gb := c.Goodbye()
	if gb == nil || gb.Reason != protocol.ReasonShutdown || gb.ReconnectMs <= 0 {
		t.Fatalf("goodbye = %+v (connection error %v)", gb, c.Err())
	}
	if len(seqs) != 50 || seqs[0] != 1 || seqs[49] != 50 {
		t.Fatalf("client received %d own messages before goodbye, want 50 in order", len(seqs))
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		t.Fatal("server did not exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	p2 := startProc(t, bin, "--data", data)
	api.Base = p2.base
	if _, err := api.Login(ctx, "ann", "password-ann"); err != nil {
		t.Fatal(err)
	}
	checkLog(t, fullHistory(t, ctx, api, room.ID))
}
