package store

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/google/uuid"
)

func benchStore(tb testing.TB, sync string) (*Store, *Room) {
	tb.Helper()
	st, err := Open(context.Background(), Options{DataDir: tb.TempDir(), SQLiteSync: sync})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	u := &User{ID: uuid.NewString(), Username: "bench", PasswordHash: "x", CreatedAt: Now()}
	if err := st.CreateUser(context.Background(), u); err != nil {
		tb.Fatal(err)
	}
	r := &Room{ID: uuid.NewString(), SpaceID: DefaultSpace, Name: "bench", Kind: KindPublic, CreatedBy: u.ID, CreatedAt: Now()}
	if err := st.CreateRoom(context.Background(), r, []Member{{RoomID: r.ID, UserID: u.ID, Role: "owner", JoinedAt: Now()}}); err != nil {
		tb.Fatal(err)
	}
	return st, r
}

func TestCommitterSeqIsGapFree(t *testing.T) {
	st, r := benchStore(t, "normal")
	c := st.NewCommitter(CommitterOptions{})
	defer c.Close()
	const n = 300
	seqs := make(chan int64, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		op := &Op{Kind: EventMessage, RoomID: r.ID, Actor: r.CreatedBy, MessageID: uuid.NewString(), Text: "hi",
			Ref: fmt.Sprint("r", i), Done: func(res Result) { defer wg.Done(); seqs <- res.Event.Seq }}
		if err := c.Submit(context.Background(), op); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		seen[s] = true
	}
	for s := int64(1); s <= n; s++ {
		if !seen[s] {
			t.Fatalf("seq %d missing from %d committed messages", s, len(seen))
		}
	}
}

// BenchmarkCommitterAppend submits sends from 64 concurrent senders, as a
// busy server does, and waits for every commit: ns/op is the durable cost
// of one message with group commit. The "full" variant fsyncs every
// transaction (the default); "normal" survives process crashes only.
func BenchmarkCommitterAppend(b *testing.B) {
	for _, mode := range []string{"full", "normal"} {
		b.Run(mode, func(b *testing.B) {
			st, r := benchStore(b, mode)
			c := st.NewCommitter(CommitterOptions{})
			defer c.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			var wg sync.WaitGroup
			wg.Add(b.N)
			sem := make(chan struct{}, 64*16)
			for i := 0; i < b.N; i++ {
				sem <- struct{}{}
				op := &Op{Kind: EventMessage, RoomID: r.ID, Actor: r.CreatedBy, MessageID: uuid.NewString(),
					Text: "hello, this is a message of ordinary length", Ref: fmt.Sprint("b", i),
					Done: func(Result) { <-sem; wg.Done() }}
				if err := c.Submit(ctx, op); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			// CPU per op is steadier than wall time on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user+system CPU time in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// A batch mixing repeats of stored and in-batch refs with an edit gives each
// op the same result as if it were committed alone.
func TestCommitterMixedBatch(t *testing.T) {
	st, r := benchStore(t, "normal")
	c := st.NewCommitter(CommitterOptions{})
	defer c.Close()
	ctx := context.Background()
	submit := func(ops ...*Op) []Result {
		out := make([]Result, len(ops))
		var wg sync.WaitGroup
		for i, op := range ops {
			wg.Add(1)
			op.Done = func(res Result) { out[i] = res; wg.Done() }
			if err := c.Submit(ctx, op); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		return out
	}
	send := func(ref, text string) *Op {
		return &Op{Kind: EventMessage, RoomID: r.ID, Actor: r.CreatedBy, MessageID: uuid.NewString(), Ref: ref, Text: text}
	}
	first := submit(send("r1", "one"))[0]
	if first.Err != nil || first.Event.Seq != 1 {
		t.Fatalf("first send: %+v", first)
	}
	res := submit(
		send("r1", "one again"),
		send("r2", "two"),
		&Op{Kind: EventEdited, RoomID: r.ID, Actor: r.CreatedBy, Target: first.Event.MessageID, Text: "one, edited"},
		send("r2", "two again"),
		send("", "three"),
		&Op{Kind: EventMessage, RoomID: r.ID, Actor: r.CreatedBy, MessageID: uuid.NewString(), Text: "reply", ThreadID: first.Event.MessageID},
	)
	if !res[0].Dup || res[0].Event.MessageID != first.Event.MessageID || res[0].Event.Seq != 1 {
		t.Errorf("repeat of a stored ref: %+v", res[0])
	}
	if res[1].Err != nil || res[1].Dup || res[1].Event.Seq != 2 {
		t.Errorf("new send: %+v", res[1])
	}
	if res[2].Err != nil || res[2].Event.Seq != 3 {
		t.Errorf("edit: %+v", res[2])
	}
	if !res[3].Dup || res[3].Event.MessageID != res[1].Event.MessageID {
		t.Errorf("repeat of an in-batch ref: %+v", res[3])
	}
	if res[4].Err != nil || res[4].Event.Seq != 4 {
		t.Errorf("send without ref: %+v", res[4])
	}
	if res[5].Err != nil || res[5].Event.Seq != 5 || res[5].Event.ThreadID != first.Event.MessageID {
		t.Errorf("thread reply: %+v", res[5])
	}
	evs, err := st.Events(ctx, r.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 {
		t.Fatalf("room log has %d events, want 5: %+v", len(evs), evs)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
	}
	m, err := st.MessageByID(ctx, first.Event.MessageID)
	if err != nil || m.Text != "one, edited" {
		t.Errorf("edited message: %+v, %v", m, err)
	}
}
