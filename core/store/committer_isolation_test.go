package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/core/store"
)

// TestCommitterIsolatesAFailingOp: an op that fails in the database (here a
// message id that is already stored) fails alone; the ops committed in the
// same group commit with it succeed, on both backends.
func TestCommitterIsolatesAFailingOp(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, store.Options{DSN: b.DSN(t), DataDir: t.TempDir(), SQLiteSync: "normal"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			u := &store.User{ID: uuid.NewString(), Username: "alice", PasswordHash: "x", CreatedAt: store.Now()}
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			r := &store.Room{ID: uuid.NewString(), SpaceID: store.DefaultSpace, Name: "r", Kind: store.KindPublic, CreatedBy: u.ID, CreatedAt: store.Now()}
			if err := st.CreateRoom(ctx, r, []store.Member{{RoomID: r.ID, UserID: u.ID, Role: "owner", JoinedAt: store.Now()}}); err != nil {
				t.Fatal(err)
			}
			c := st.NewCommitter(store.CommitterOptions{})
			defer c.Close()
			var wg sync.WaitGroup
			submit := func(op *store.Op) *store.Result {
				res := new(store.Result)
				wg.Add(1)
				op.Done = func(r store.Result) { *res = r; wg.Done() }
				if err := c.Submit(ctx, op); err != nil {
					t.Fatal(err)
				}
				return res
			}
			send := func(id, text string) *store.Op {
				return &store.Op{Kind: store.EventMessage, RoomID: r.ID, Actor: u.ID, MessageID: id, Text: text}
			}
			taken := uuid.NewString()
			first := submit(send(taken, "first"))
			wg.Wait()
			if first.Err != nil {
				t.Fatal(first.Err)
			}
			// Hold the room's row: the committer's next transaction waits
			// for it, so the ops submitted meanwhile share a batch with the
			// failing one (whichever prefix the writer had already taken).
			hold := st.DB.Begin()
			if err := hold.Exec("UPDATE rooms SET last_seq = last_seq WHERE id = ?", r.ID).Error; err != nil {
				t.Fatal(err)
			}
			good := []*store.Result{submit(send(uuid.NewString(), "a")), submit(send(uuid.NewString(), "b"))}
			bad := submit(send(taken, "repeats a stored message id"))
			good = append(good,
				submit(send(uuid.NewString(), "c")),
				submit(&store.Op{Kind: store.EventEdited, RoomID: r.ID, Actor: u.ID, Target: taken, Text: "first, edited"}),
				submit(&store.Op{Kind: store.EventReaction, RoomID: r.ID, Actor: u.ID, Target: taken, Emoji: "+1", On: true}))
			if err := hold.Rollback().Error; err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if bad.Err == nil {
				t.Fatalf("the op repeating a stored message id succeeded: %+v", bad)
			}
			seen := map[int64]bool{1: true}
			for i, g := range good {
				if g.Err != nil {
					t.Fatalf("op %d of the batch failed with the bad one: %v", i, g.Err)
				}
				seen[g.Event.Seq] = true
			}
			evs, err := st.Events(ctx, r.ID, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 6 || len(seen) != 6 {
				t.Fatalf("room log has %d events (acked seqs %v), want 6", len(evs), seen)
			}
			for i, ev := range evs {
				if ev.Seq != int64(i+1) || !seen[ev.Seq] {
					t.Fatalf("event %d has seq %d (acked %v)", i, ev.Seq, seen)
				}
			}
		})
	}
}
