package auth

import (
	"context"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/store"
)

func newBenchAuth(tb testing.TB) *Service {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	s, err := New(Options{Store: st, DataDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestAuthenticateRejectsTamperedToken(t *testing.T) {
	s := newBenchAuth(t)
	tok, err := s.Sign(store.User{ID: "u1", Username: "ada", Role: "member"}, "sid", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Authenticate(context.Background(), tok)
	if err != nil || id.UserID != "u1" || id.Username != "ada" {
		t.Fatalf("Authenticate = %+v, %v", id, err)
	}
	bad := tok[:len(tok)-2] + "AA"
	if bad == tok {
		bad = tok[:len(tok)-2] + "BB"
	}
	if _, err := s.Authenticate(context.Background(), bad); err == nil {
		t.Fatal("tampered token accepted")
	}
}

// BenchmarkAuthenticate is the token check every WebSocket handshake and
// REST call pays (EdDSA verify + claims).
func BenchmarkAuthenticate(b *testing.B) {
	s := newBenchAuth(b)
	tok, err := s.Sign(store.User{ID: "u1", Username: "ada", Role: "member"}, "sid", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
