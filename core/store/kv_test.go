package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/core/store"
)

func TestPluginKV(t *testing.T) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, store.Options{DSN: b.DSN(t), DataDir: t.TempDir(), SQLiteSync: "normal"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(st.KVSet(ctx, "p1", "k", []byte("v1"), 0))
			must(st.KVSet(ctx, "p2", "k", []byte("other"), 0))
			must(st.KVSet(ctx, "p1", "k", []byte("v2"), 0)) // overwrite
			if v, err := st.KVGet(ctx, "p1", "k"); err != nil || string(v) != "v2" {
				t.Fatalf("get = %q, %v", v, err)
			}
			if v, _ := st.KVGet(ctx, "p2", "k"); string(v) != "other" {
				t.Fatalf("namespaces leak: %q", v)
			}
			if _, err := st.KVGet(ctx, "p1", "missing"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("missing key: %v", err)
			}
			// Expired keys read as absent and may be taken by CAS-if-absent.
			must(st.KVSet(ctx, "p1", "gone", []byte("x"), -1))
			must(st.DB.Exec("UPDATE plugin_kvs SET expires_at = 1 WHERE key = 'gone'").Error)
			if _, err := st.KVGet(ctx, "p1", "gone"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("expired key still readable: %v", err)
			}
			if ok, err := st.KVCompareAndSet(ctx, "p1", "gone", nil, true, []byte("mine"), 0); err != nil || !ok {
				t.Fatalf("cas over expired: %v %v", ok, err)
			}
			// Prefix listing escapes LIKE wildcards and pages.
			for _, k := range []string{"a_1", "a_2", "ab", "a%x", "b"} {
				must(st.KVSet(ctx, "p1", k, []byte(k), 0))
			}
			rows, err := st.KVList(ctx, "p1", "a_", "", 10)
			if err != nil || len(rows) != 2 || rows[0].Key != "a_1" || rows[1].Key != "a_2" {
				t.Fatalf("list a_ = %+v, %v", rows, err)
			}
			rows, _ = st.KVList(ctx, "p1", "a", "a_1", 2)
			if len(rows) != 2 || rows[0].Key != "a_2" || rows[1].Key != "ab" {
				t.Fatalf("page = %+v", rows)
			}
			// Bad input changes nothing.
			if err := st.KVSet(ctx, "p1", "", []byte("x"), 0); err == nil {
				t.Fatal("empty key accepted")
			}
			if err := st.KVSet(ctx, "p1", strings.Repeat("k", 300), nil, 0); err == nil {
				t.Fatal("long key accepted")
			}
			if n, err := st.KVSweep(ctx); err != nil || n != 0 {
				t.Fatalf("sweep = %d, %v", n, err)
			}
			must(st.KVDelete(ctx, "p1", "b"))
			must(st.KVDelete(ctx, "p1", "b"))

			// Compare-and-set: exactly one of many concurrent writers wins.
			must(st.KVSet(ctx, "p1", "counter", []byte("0"), 0))
			var wins atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := st.KVCompareAndSet(ctx, "p1", "counter", []byte("0"), false, []byte(fmt.Sprint(i+1)), 0)
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins.Add(1)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d CAS winners, want 1", wins.Load())
			}
		})
	}
}
