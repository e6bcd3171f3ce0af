package secevent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/metrics"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/core/store"
)

func openStore(t *testing.T, dsn string, dir ...string) *store.Store {
	t.Helper()
	d := t.TempDir()
	if len(dir) > 0 {
		d = dir[0]
	}
	st, err := store.Open(context.Background(), store.Options{DSN: dsn, DataDir: d, SQLiteSync: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newOutbox(t *testing.T, st *store.Store, max int64) *secevent.Outbox {
	t.Helper()
	x, err := secevent.New(context.Background(), secevent.Options{Store: st, Max: max, Metrics: metrics.New()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	return x
}

func flush(t *testing.T, xs ...*secevent.Outbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, x := range xs {
		if err := x.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Four outboxes on one database (four nodes) with concurrent emitters: ids
// come out 1..N without a gap, and a reader following the stream while they
// write never sees an id before a smaller one is visible (commit order).
func TestIDsAreGapFreeInCommitOrder(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			dsn, dir := b.DSN(t), t.TempDir()
			st := openStore(t, dsn, dir)
			const writers, per = 4, 150
			var nodes []*secevent.Outbox
			for range writers {
				nodes = append(nodes, newOutbox(t, openStore(t, dsn, dir), 1_000_000))
			}
			stop := make(chan struct{})
			readErr := make(chan error, 1)
			var seen int64
			go func() { // follows the stream like a plugin's cursor
				defer close(readErr)
				for {
					select {
					case <-stop:
						return
					default:
					}
					evs, err := st.SecurityEvents(context.Background(), store.SecurityQuery{After: seen, Limit: 200})
					if err != nil {
						readErr <- err
						return
					}
					for _, e := range evs {
						if e.ID != seen+1 {
							readErr <- fmt.Errorf("after id %d the reader saw id %d: a later commit was visible before an earlier one", seen, e.ID)
							return
						}
						seen = e.ID
					}
				}
			}()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					x := nodes[w]
					for i := range per {
						x.Emit(context.Background(), secevent.Event{Type: secevent.LoginFailed, Target: "w" + strconv.Itoa(w),
							Outcome: secevent.Failure, Details: map[string]string{"i": strconv.Itoa(i)}})
						if i%3 == 0 { // many small transactions racing each other
							flush(t, x)
						}
					}
				}()
			}
			wg.Wait()
			flush(t, nodes...)
			close(stop)
			if err := <-readErr; err != nil {
				t.Fatal(err)
			}
			evs, err := st.SecurityEvents(context.Background(), store.SecurityQuery{Limit: 10 * writers * per})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != writers*per {
				t.Fatalf("%d events stored, want %d", len(evs), writers*per)
			}
			next := map[string]int{}
			for i, e := range evs {
				if e.ID != int64(i+1) {
					t.Fatalf("event %d has id %d: ids are not 1..N", i, e.ID)
				}
				var d struct{ I string }
				_ = jsonUnmarshal(e.Details, &d)
				// One writer's events keep their emit order.
				if d.I != strconv.Itoa(next[e.Target]) {
					t.Fatalf("writer %s: event %s after %d", e.Target, d.I, next[e.Target]-1)
				}
				next[e.Target]++
			}
		})
	}
}

// The outbox keeps at most Max events: the oldest are pruned, the bounds
// say so, and a new cursor starts at the oldest retained event.
func TestOutboxIsBounded(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := openStore(t, b.DSN(t))
			x := newOutbox(t, st, 100)
			ctx := context.Background()
			early, err := x.Cursor(ctx, "early")
			if err != nil || early != 0 {
				t.Fatalf("cursor on an empty outbox = %d, %v; want 0", early, err)
			}
			for range 350 {
				x.Emit(ctx, secevent.Event{Type: secevent.LoginFailed, Outcome: secevent.Failure})
			}
			flush(t, x)
			var oldest, last int64
			deadline := time.Now().Add(60 * time.Second)
			for {
				oldest, last, err = x.Bounds(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if last-oldest+1 <= 101 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if last != 350 || last-oldest+1 > 101 || oldest < 250 {
				t.Fatalf("bounds after 350 events with max 100: oldest %d, last %d", oldest, last)
			}
			if c, err := x.Cursor(ctx, "late"); err != nil || c != oldest-1 {
				t.Fatalf("a new cursor = %d, %v; want %d (before the oldest retained event)", c, err, oldest-1)
			}
			// The early cursor fell behind the window: its next read starts past it.
			evs, err := x.List(ctx, store.SecurityQuery{After: early, Limit: 10})
			if err != nil || len(evs) == 0 || evs[0].ID == early+1 {
				t.Fatalf("read after a pruned cursor: %+v, %v; want a first id past %d", evs, err, early+1)
			}
			if err := x.Advance(ctx, "late", 300); err != nil {
				t.Fatal(err)
			}
			if err := x.Advance(ctx, "late", 200); err != nil { // never backwards
				t.Fatal(err)
			}
			if c, _ := x.Cursor(ctx, "late"); c != 300 {
				t.Fatalf("cursor = %d after advancing to 300 and then (not) back to 200", c)
			}
		})
	}
}

// Strings no column can hold (invalid UTF-8, NUL, overlong) are cleaned, so
// one bad event cannot fail its batch; unknown types and events after
// Close are dropped without harm.
func TestHostileValuesAndDrops(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := openStore(t, b.DSN(t))
			x := newOutbox(t, st, 1000)
			bad := "bad\xff\x00ua" + string(make([]byte, 600))
			ctx := secevent.WithActor(secevent.WithRequest(context.Background(), "203.0.113.9", bad), "u1")
			x.Emit(ctx, secevent.Event{Type: secevent.LoginFailed, Outcome: secevent.Failure, Details: map[string]string{"k\x00": bad}})
			x.Emit(ctx, secevent.Event{Type: "no.such.type"})
			x.Emit(ctx, secevent.Event{Type: secevent.Logout, Actor: "u2"})
			flush(t, x)
			evs, err := x.List(context.Background(), store.SecurityQuery{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 2 || evs[0].Type != "login.failed" || evs[1].Type != "logout" {
				t.Fatalf("events %+v; want login.failed and logout (the unknown type dropped)", evs)
			}
			e := evs[0]
			if e.ClientAddr != "203.0.113.9" || e.Actor != "u1" || len(e.UserAgent) > 256 || e.UserAgent[:3] != "bad" {
				t.Fatalf("context not applied or UA not cut: %+v", e)
			}
			if evs[1].Actor != "u2" {
				t.Fatalf("an explicit actor lost to the context's: %+v", evs[1])
			}
			x.Close()
			x.Emit(ctx, secevent.Event{Type: secevent.Logout}) // after Close: dropped, no panic
			var nilOutbox *secevent.Outbox
			nilOutbox.Emit(ctx, secevent.Event{Type: secevent.Logout})
		})
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
