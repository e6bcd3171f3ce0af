package auth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/store"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newService(t testing.TB, o Options) (*Service, *clock) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, store.Options{DataDir: dir, SQLiteSync: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	o.Store, o.DataDir, o.Now, o.Logger = st, dir, clk.Now, quiet
	o.Argon2 = Argon2Params{Time: 1, Memory: 1024, Threads: 1}
	s, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func jwksKids(t *testing.T, s *Service) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Kty string `json:"kty"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// TestKeyLifecycle walks one rotation: the next key is published before it
// signs, the old key verifies until its last token expires, then it is
// deleted from disk and from the JWKS.
func TestKeyLifecycle(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			s, clk := newService(t, Options{Alg: alg, AccessTTL: 15 * time.Minute, KeyPublishLead: 10 * time.Minute})
			u := store.User{ID: "u1", Username: "alice", Role: "member"}
			first, a := s.SigningKey()
			if a != alg {
				t.Fatalf("signing alg %s, want %s", a, alg)
			}
			tokA, _ := s.Sign(u, "s1", "d1")
			next, err := s.RotateKeys(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if kids := jwksKids(t, s); len(kids) != 2 {
				t.Fatalf("after rotate the JWKS has %v; want the current and the next key", kids)
			}
			if k, _ := s.SigningKey(); k != first {
				t.Fatalf("the next key signs before its publish lead: %s", k)
			}
			clk.Add(10*time.Minute + time.Second)
			if err := s.ReloadKeys(); err != nil {
				t.Fatal(err)
			}
			if k, _ := s.SigningKey(); k != next.Kid {
				t.Fatalf("after the lead the signer is %s, want %s", k, next.Kid)
			}
			tokB, _ := s.Sign(u, "s1", "d1")
			for name, tok := range map[string]string{"old-key token": tokA, "new-key token": tokB} {
				if _, err := s.Authenticate(context.Background(), tok); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			// The old key's last token (signed just before the switch) expires
			// 15m after it; the key stays until then (+ leeway).
			clk.Add(14 * time.Minute)
			s.ReloadKeys()
			if kids := jwksKids(t, s); len(kids) != 2 {
				t.Fatalf("old key dropped while its tokens may live: %v", kids)
			}
			clk.Add(2 * time.Minute)
			s.ReloadKeys()
			if kids := jwksKids(t, s); len(kids) != 1 || kids[0] != next.Kid {
				t.Fatalf("after expiry the JWKS has %v, want only %s", kids, next.Kid)
			}
			if _, err := os.Stat(filepath.Join(s.o.KeysDir, first+".pem")); !os.IsNotExist(err) {
				t.Fatalf("retired private key still on disk: %v", err)
			}
		})
	}
}

func TestScheduledRotation(t *testing.T) {
	s, clk := newService(t, Options{KeyRotation: 24 * time.Hour, KeyPublishLead: time.Minute})
	first, _ := s.SigningKey()
	clk.Add(23 * time.Hour)
	if err := s.MaintainKeys(); err != nil {
		t.Fatal(err)
	}
	if n := len(jwksKids(t, s)); n != 1 {
		t.Fatalf("rotated early: %d keys", n)
	}
	clk.Add(time.Hour)
	s.MaintainKeys()
	s.MaintainKeys() // a pending key counts as the newest: no second rotation
	if n := len(jwksKids(t, s)); n != 2 {
		t.Fatalf("scheduled rotation: %d keys published, want 2", n)
	}
	clk.Add(time.Minute)
	s.MaintainKeys()
	if k, _ := s.SigningKey(); k == first {
		t.Fatal("still signing with the first key after rotation and lead")
	}
}

func TestKeyFilePermissions(t *testing.T) {
	s, _ := newService(t, Options{})
	kid, _ := s.SigningKey()
	p := filepath.Join(s.o.KeysDir, kid+".pem")
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("key written with %04o, want 0600", st.Mode().Perm())
	}
	os.Chmod(p, 0o644)
	err := s.ReloadKeys()
	if err == nil || !strings.Contains(err.Error(), "too open") {
		t.Fatalf("a world-readable key was accepted: %v", err)
	}
	if _, err := LoadKeys(s.o.KeysDir); err == nil {
		t.Fatal("LoadKeys accepted a 0644 key")
	}
}

func TestBadOptions(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, o := range map[string]Options{
		"registration": {Registration: "maybe"},
		"alg":          {Alg: "HS256"},
		"argon2":       {Argon2: Argon2Params{Time: 0, Memory: 1, Threads: 1}},
		"lead":         {KeyPublishLead: -time.Second},
	} {
		o.Store, o.DataDir, o.Logger = st, t.TempDir(), quiet
		if _, err := New(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestLockoutBackoff: N failures lock for Base, the next lockout doubles,
// up to Max; a success forgives.
func TestLockoutBackoff(t *testing.T) {
	l := newLockout(LockoutOptions{Threshold: 3, IPThreshold: 10, Window: time.Minute, Base: time.Second, Max: 4 * time.Second})
	now := time.Unix(0, 0)
	var got []time.Duration
	for round := 0; round < 4; round++ {
		var d time.Duration
		for i := 0; i < 3; i++ {
			if l.check("a", now) > 0 {
				t.Fatalf("round %d: locked before the threshold", round)
			}
			d = l.fail("a", 3, now)
		}
		got = append(got, d)
		if l.check("a", now) != d {
			t.Fatalf("round %d: check says %v, fail said %v", round, l.check("a", now), d)
		}
		now = now.Add(d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("lockouts %v, want %v", got, want)
		}
	}
	if l.check("b", now) != 0 {
		t.Fatal("another key is locked")
	}
	l.succeed("a")
	l.fail("a", 3, now)
	l.fail("a", 3, now)
	if d := l.fail("a", 3, now); d != time.Second {
		t.Fatalf("after a success the backoff restarts at Base; got %v", d)
	}
}

// TestUnknownKidReloads: a token signed by a key that appeared in the key
// directory after the last check (another node, or a rotation with no lead)
// verifies at once, and made-up kids reload at most every 5 s.
func TestUnknownKidReloads(t *testing.T) {
	a, clk := newService(t, Options{})
	// A second service on the same key dir stands in for another node.
	b, err := New(context.Background(), Options{Store: a.o.Store, KeysDir: a.o.KeysDir, Now: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	m, err := GenerateKey(a.o.KeysDir, AlgEdDSA, clk.Now, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.ReloadKeys()
	if k, _ := b.SigningKey(); k != m.Kid {
		t.Fatalf("b signs with %s", k)
	}
	tok, _ := b.Sign(store.User{ID: "u", Username: "u"}, "s", "d")
	clk.Add(6 * time.Second) // a's last kid-triggered reload is long ago
	if _, err := a.Authenticate(context.Background(), tok); err != nil {
		t.Fatalf("token from a key added after a's last check: %v", err)
	}
	// Within 5 s another unknown kid does not reload.
	clk.Add(time.Second)
	m2, _ := GenerateKey(a.o.KeysDir, AlgEdDSA, clk.Now, 0)
	b.ReloadKeys()
	tok2, _ := b.Sign(store.User{ID: "u", Username: "u"}, "s", "d")
	var te *TokenError
	if _, err := a.Authenticate(context.Background(), tok2); !errors.As(err, &te) || te.Reason != ReasonUnknownKid {
		t.Fatalf("second unknown kid within 5 s (%s): %v", m2.Kid, err)
	}
}

// BenchmarkAuthenticate is the per-handshake and per-REST-call cost:
// signature check plus the revocation-set lookup.
func BenchmarkAuthenticate(b *testing.B) {
	for _, alg := range []string{AlgEdDSA, AlgRS256} {
		b.Run(alg, func(b *testing.B) {
			s, _ := newService(b, Options{Alg: alg})
			// a few thousand revoked sessions in the set
			var rows []store.Session
			for i := 0; i < 5000; i++ {
				rows = append(rows, store.Session{ID: "revoked-" + string(rune('a'+i%26)) + time.Duration(i).String(), RevokedAt: s.o.Now().UnixMilli()})
			}
			s.markRevoked(rows)
			tok, _ := s.Sign(store.User{ID: "u", Username: "u"}, "live", "d")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Authenticate(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAlgSwitch: restarting with --jwt-alg RS256 on a data dir with EdDSA
// keys signs with a new RS256 key at once and still verifies the EdDSA
// tokens already issued.
func TestAlgSwitch(t *testing.T) {
	ed, clk := newService(t, Options{})
	old, _ := ed.Sign(store.User{ID: "u", Username: "u"}, "s", "d")
	clk.Add(time.Second)
	rs, err := New(context.Background(), Options{Store: ed.o.Store, DataDir: ed.o.DataDir, Alg: AlgRS256, Now: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, alg := rs.SigningKey(); alg != AlgRS256 {
		t.Fatalf("signing with %s after the switch", alg)
	}
	if _, err := rs.Authenticate(context.Background(), old); err != nil {
		t.Fatalf("EdDSA token after switching to RS256: %v", err)
	}
	if n := len(jwksKids(t, rs)); n != 2 {
		t.Fatalf("JWKS has %d keys, want the EdDSA and the RS256 key", n)
	}
}
