package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// from returns an HTTP client whose connections leave from ip (any address
// in 127/8 works on Linux), so tests can act as different client addresses
// without trusting X-Forwarded-For.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func apiFrom(env *servertest.Env, ip string) *client.API {
	return &client.API{Base: env.URL, HTTP: from(ip)}
}

func apiErr(t *testing.T, err error) *client.APIError {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae
}

// dialToken opens a WebSocket with an access token.
func dialToken(t *testing.T, env *servertest.Env, token string) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctx(t), env.WSURL, client.Options{Token: token})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// awaitGoodbye waits for goodbye{reason} and returns how long after start
// it arrived.
func awaitGoodbye(t *testing.T, c *client.Conn, reason string, start time.Time) time.Duration {
	t.Helper()
	g := servertest.Next(t, c, 5*time.Second, protocol.TypeGoodbye)
	d := time.Since(start)
	if g.Reason != reason {
		t.Fatalf("goodbye reason %q, want %q", g.Reason, reason)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("socket still open after goodbye")
	}
	return d
}

// --- forged tokens ---------------------------------------------------------

// serverKey reads the server's current signing key from its key directory.
func serverKey(t *testing.T, env *servertest.Env) (string, any) {
	t.Helper()
	return env.SigningKey(t)
}

func claimsOf(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func signWith(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, c)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// TestForgedTokensRefused: every altered or forged token is refused before
// the WebSocket upgrade with 401 and the reason, and by REST the same way.
func TestForgedTokensRefused(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := ctx(t)
	u := env.NewUser(t, "alice")
	kid, key := serverKey(t, env)
	priv := key.(ed25519.PrivateKey)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := claimsOf(t, u.Token)
	now := time.Now().Unix()

	// A session that was logged out: its unexpired access token is revoked.
	a2 := &client.API{Base: env.URL}
	t2, err := a2.Login(ctx, "alice", "password-alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Logout(ctx, t2.RefreshToken); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(u.Token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"role":"superadmin"`), []byte(`"role":"superadmin" `), 1)) + "." + parts[2]
	evilPayload := bytes.Replace(payload, []byte(`"preferred_username":"alice"`), []byte(`"preferred_username":"admin"`), 1)
	tamperedName := parts[0] + "." + base64.RawURLEncoding.EncodeToString(evilPayload) + "." + parts[2]
	noneTok := signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, good)

	cases := []struct{ name, token, reason string }{
		{"expired", signWith(t, jwt.SigningMethodEdDSA, priv, kid, with(good, "exp", now-3600, "iat", now-7200, "nbf", now-7200)), auth.ReasonExpired},
		{"not yet valid", signWith(t, jwt.SigningMethodEdDSA, priv, kid, with(good, "nbf", now+3600)), auth.ReasonNotYet},
		{"unknown kid", signWith(t, jwt.SigningMethodEdDSA, other, "ed25519-not-ours", good), auth.ReasonUnknownKid},
		{"no kid", signWith(t, jwt.SigningMethodEdDSA, priv, "", good), auth.ReasonUnknownKid},
		{"our kid, another key", signWith(t, jwt.SigningMethodEdDSA, other, kid, good), auth.ReasonSignature},
		{"alg none", noneTok, auth.ReasonAlg},
		{"alg none, signature stripped", strings.TrimSuffix(noneTok, ".") + ".", auth.ReasonAlg},
		{"HS256 keyed with the public key", signWith(t, jwt.SigningMethodHS256, []byte(priv.Public().(ed25519.PublicKey)), kid, good), auth.ReasonAlg},
		{"RS256 header on an EdDSA kid", signWith(t, jwt.SigningMethodRS256, rsaKey, kid, good), auth.ReasonAlg},
		{"tampered payload (whitespace)", tampered, auth.ReasonSignature},
		{"tampered payload (username)", tamperedName, auth.ReasonSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(t2.AccessToken, ".")[2], auth.ReasonSignature},
		{"wrong issuer", signWith(t, jwt.SigningMethodEdDSA, priv, kid, with(good, "iss", "someone-else")), auth.ReasonClaims},
		{"no expiry", signWith(t, jwt.SigningMethodEdDSA, priv, kid, with(good, "exp", nil)), auth.ReasonClaims},
		{"no session", signWith(t, jwt.SigningMethodEdDSA, priv, kid, with(good, "sid", nil)), auth.ReasonClaims},
		{"garbage", "not-a-jwt", auth.ReasonMalformed},
		{"two segments", parts[0] + "." + parts[1], auth.ReasonMalformed},
		{"revoked session", t2.AccessToken, auth.ReasonRevoked},
	}
	if strings.Contains(string(payload), `"role":"superadmin"`) == false {
		t.Fatalf("first user should be superadmin: %s", payload)
	}
	// The genuine token passes both doors.
	if _, err := (&client.API{Base: env.URL, Token: u.Token}).Me(ctx); err != nil {
		t.Fatalf("genuine token refused by REST: %v", err)
	}
	dialToken(t, env, u.Token)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Dial(ctx, env.WSURL, client.Options{Token: tc.token})
			var he *client.HandshakeError
			if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || he.Body.Code != protocol.CodeUnauthorized {
				t.Fatalf("handshake: %v, want 401 unauthorized", err)
			}
			if !strings.Contains(he.Body.Message, tc.reason) {
				t.Fatalf("handshake refused with %q, want reason %q", he.Body.Message, tc.reason)
			}
			_, err = (&client.API{Base: env.URL, Token: tc.token}).Me(ctx)
			ae := apiErr(t, err)
			if ae.Status != http.StatusUnauthorized || !strings.Contains(ae.Message, tc.reason) {
				t.Fatalf("REST: %v, want 401 with %q", err, tc.reason)
			}
		})
	}
	// Browser style: the token in Sec-WebSocket-Protocol is checked the same way.
	if _, err := client.Dial(ctx, env.WSURL, client.Options{Token: tamperedName, BrowserStyle: true}); err == nil {
		t.Fatal("tampered token accepted as a bearer subprotocol")
	}
	c, err := client.Dial(ctx, env.WSURL, client.Options{Token: u.Token, BrowserStyle: true})
	if err != nil {
		t.Fatalf("genuine token as bearer subprotocol: %v", err)
	}
	c.Close()
}

// --- origin allow-list -----------------------------------------------------

func TestOriginAllowList(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.AllowedOrigins = []string{"https://chat.example.com", "http://localhost:3000"}
	}})
	u := env.NewUser(t, "alice")
	own := strings.TrimSuffix(env.URL, "/")
	ownHTTPS := strings.Replace(own, "http://", "https://", 1)
	cases := []struct {
		origin string
		ok     bool
	}{
		{"", true}, // not a browser
		{"https://chat.example.com", true},
		{"http://localhost:3000", true},
		{own, true},                              // the server's own origin
		{"http://chat.example.com", false},       // scheme differs
		{"https://chat.example.com:8443", false}, // port differs
		{"https://chat.example.com:443", false},  // exact match only
		{"https://chat.example.com.evil.net", false},
		{"https://evil.net", false},
		{"http://localhost:3001", false},
		{"http://localhost", false},
		{"null", false},
		{ownHTTPS, false}, // own host over another scheme
	}
	for _, tc := range cases {
		c, err := client.Dial(ctx(t), env.WSURL, client.Options{Token: u.Token, Origin: tc.origin})
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tc.origin, err)
				continue
			}
			c.Close()
			continue
		}
		var he *client.HandshakeError
		if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Body.Code != protocol.CodeForbidden {
			t.Errorf("origin %q: %v, want 403 forbidden before upgrade", tc.origin, err)
		}
	}
}

// --- lockout ---------------------------------------------------------------

func lockoutEnv(t *testing.T) *servertest.Env {
	return servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.LockoutThreshold, c.LockoutIPThreshold = 3, 5
		c.LockoutWindow, c.LockoutBase, c.LockoutMax = time.Minute, time.Second, 4*time.Second
	}})
}

// TestLockoutBruteForce is "Done when" 3: a brute-force loop against one
// account is locked out with a retry hint that grows, while another account
// logs in from another address; an unknown account gets identical answers.
func TestLockoutBruteForce(t *testing.T) {
	env := lockoutEnv(t)
	ctx := ctx(t)
	env.NewUser(t, "alice")
	env.NewUser(t, "bob")
	attacker := apiFrom(env, "127.0.0.2")
	brute := func(login string) (*client.APIError, int) {
		for i := 1; i <= 10; i++ {
			_, err := attacker.Login(ctx, login, fmt.Sprintf("guess-%d-xxxx", i))
			ae := apiErr(t, err)
			if ae.Status == http.StatusTooManyRequests {
				return ae, i
			}
			if ae.Status != http.StatusUnauthorized || ae.Message != auth.ErrInvalidCredentials.Error() {
				t.Fatalf("attempt %d: %v, want 401 %q", i, err, auth.ErrInvalidCredentials)
			}
		}
		t.Fatal("10 wrong passwords and no lockout")
		return nil, 0
	}
	first, n := brute("alice")
	if n != 3 || first.Code != protocol.CodeRateLimited || first.RetryAfterMs != 1000 || first.RetryAfter != "1" {
		t.Fatalf("lockout after %d attempts: %+v; want the 3rd to answer 429 rate_limited, retry_after_ms 1000, Retry-After 1", n, first)
	}
	t.Logf("alice locked after %d failures: %q retry_after_ms=%d Retry-After=%s", n, first.Message, first.RetryAfterMs, first.RetryAfter)
	// Locked means locked: the right password does not get in either, and
	// the answer is the same 429 (no oracle).
	_, err := attacker.Login(ctx, "alice", "password-alice")
	if ae := apiErr(t, err); ae.Status != http.StatusTooManyRequests || ae.RetryAfterMs <= 0 || ae.RetryAfterMs > 1000 {
		t.Fatalf("right password during lockout: %+v", ae)
	}
	// Bob, from another address, logs in meanwhile.
	if _, err := apiFrom(env, "127.0.0.3").Login(ctx, "bob", "password-bob"); err != nil {
		t.Fatalf("bob from 127.0.0.3 during alice's lockout: %v", err)
	}
	// An account that does not exist answers exactly the same way.
	ghost, gn := (func() (*client.APIError, int) {
		a := apiFrom(env, "127.0.0.4")
		for i := 1; i <= 10; i++ {
			_, err := a.Login(ctx, "nobody-here", "guess-xxxxxxx")
			if ae := apiErr(t, err); ae.Status == http.StatusTooManyRequests {
				return ae, i
			} else if ae.Message != auth.ErrInvalidCredentials.Error() {
				t.Fatalf("unknown account: %+v", ae)
			}
		}
		return nil, 0
	})()
	if ghost == nil || gn != n || ghost.Message != first.Message || ghost.RetryAfterMs != first.RetryAfterMs {
		t.Fatalf("unknown account: locked after %d with %+v; alice: after %d with %+v", gn, ghost, n, first)
	}
	// Growing backoff: after waiting, three more failures lock for twice as long.
	// (Each round comes from a fresh address so that the per-address
	// throttle, threshold 5, does not mix into the account's numbers.)
	time.Sleep(time.Duration(first.RetryAfterMs) * time.Millisecond)
	attacker = apiFrom(env, "127.0.0.7")
	second, n2 := brute("alice")
	if n2 != 3 || second.RetryAfterMs != 2000 || second.RetryAfter != "2" {
		t.Fatalf("second lockout after %d: %+v, want 2000 ms", n2, second)
	}
	time.Sleep(time.Duration(second.RetryAfterMs) * time.Millisecond)
	attacker = apiFrom(env, "127.0.0.8")
	third, _ := brute("alice")
	if third.RetryAfterMs != 4000 {
		t.Fatalf("third lockout %d ms, want 4000 (cap)", third.RetryAfterMs)
	}
	t.Logf("lockout durations: %d ms, %d ms, %d ms (base 1s, doubling, max 4s)", first.RetryAfterMs, second.RetryAfterMs, third.RetryAfterMs)
	time.Sleep(time.Duration(third.RetryAfterMs) * time.Millisecond)
	if _, err := apiFrom(env, "127.0.0.9").Login(ctx, "alice", "password-alice"); err != nil {
		t.Fatalf("alice after the lockout expired: %v", err)
	}
}

// TestIPThrottle: one address failing across many accounts is throttled
// before it can lock them all, and those accounts still log in elsewhere.
func TestIPThrottle(t *testing.T) {
	env := lockoutEnv(t)
	ctx := ctx(t)
	names := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	for _, n := range names {
		env.NewUser(t, n)
	}
	spray := apiFrom(env, "127.0.0.5")
	var throttled *client.APIError
	tries := 0
	for _, n := range names {
		tries++
		_, err := spray.Login(ctx, n, "wrong-password")
		if ae := apiErr(t, err); ae.Status == http.StatusTooManyRequests {
			throttled = ae
			break
		}
	}
	if throttled == nil || tries != 5 || throttled.RetryAfterMs != 1000 {
		t.Fatalf("address throttled after %d failures with %+v; want after 5 (IP threshold) with 1000 ms", tries, throttled)
	}
	_, err := spray.Login(ctx, "u6", "password-u6")
	if ae := apiErr(t, err); ae.Status != http.StatusTooManyRequests {
		t.Fatalf("throttled address logging in: %+v", ae)
	}
	for _, n := range names {
		if _, err := apiFrom(env, "127.0.0.6").Login(ctx, n, "password-"+n); err != nil {
			t.Fatalf("%s from another address after the spray: %v (one address locked the account)", n, err)
		}
	}
}

// --- rate limits -----------------------------------------------------------

func TestRateLimits(t *testing.T) {
	// Periods of an hour: a burst always fits in one interval however slowly
	// the test runs, so every refusal below is certain and its hint is bounded
	// by the rate (see checkHint), not by how fast the machine is.
	rates := map[string]ratelimit.Rate{
		"login": mustRate(t, "3/h"), "register": mustRate(t, "2/h"), "ip": mustRate(t, "3/h"),
		"messages": mustRate(t, "5/h"), "frames": mustRate(t, "10/s"), // frames: more than ca sends below
	}
	env := servertest.Start(t, servertest.Options{RateLimits: true, Config: func(c *server.Config) {
		c.RateLogin, c.RateRegister, c.RateIP = rates["login"], rates["register"], rates["ip"]
		c.RateUserMessages, c.RateFrames = rates["messages"], rates["frames"]
	}})
	ctx := ctx(t)
	reg := apiFrom(env, "127.0.0.20")
	start := time.Now()
	for _, n := range []string{"alice", "bob"} {
		if _, err := reg.Register(ctx, n, "password-"+n, ""); err != nil {
			t.Fatal(err)
		}
	}
	_, err := reg.Register(ctx, "carol", "password-carol", "")
	ae := apiErr(t, err)
	if ae.Status != 429 || ae.Code != protocol.CodeRateLimited {
		t.Fatalf("3rd registration from one address: %+v; want 429 rate_limited", ae)
	}
	checkHTTPHint(t, "3rd registration", ae, rates["register"], start)
	if _, err := apiFrom(env, "127.0.0.21").Register(ctx, "carol", "password-carol", ""); err != nil {
		t.Fatalf("registration from another address: %v", err)
	}

	la := apiFrom(env, "127.0.0.10")
	var alice client.Tokens
	start = time.Now()
	for i := 0; i < 3; i++ {
		if alice, err = la.Login(ctx, "alice", "password-alice"); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	_, err = la.Login(ctx, "alice", "password-alice")
	ae = apiErr(t, err)
	if ae.Status != 429 || ae.Code != protocol.CodeRateLimited {
		t.Fatalf("4th login in an hour: %+v; want 429 rate_limited", ae)
	}
	checkHTTPHint(t, "4th login", ae, rates["login"], start)
	t.Logf("login limit: %q retry_after_ms=%d", ae.Message, ae.RetryAfterMs)
	bob, err := apiFrom(env, "127.0.0.11").Login(ctx, "bob", "password-bob")
	if err != nil {
		t.Fatal(err)
	}

	// Handshakes: 3 per address.
	start = time.Now()
	ca := dialToken(t, env, alice.AccessToken)
	cb := dialToken(t, env, bob.AccessToken)
	c3 := dialToken(t, env, bob.AccessToken)
	c3.Close()
	_, err = client.Dial(ctx, env.WSURL, client.Options{Token: alice.AccessToken})
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.Status != 429 || he.Body.Code != protocol.CodeRateLimited {
		t.Fatalf("4th handshake: %v; want 429 rate_limited", err)
	}
	checkHint(t, "4th handshake", he.Body.RetryAfterMs, rates["ip"], start)

	// Messages: 5 per user, WebSocket and REST together.
	aliceAPI := &client.API{Base: env.URL, Token: alice.AccessToken}
	room, err := aliceAPI.CreateRoom(ctx, "r", "public")
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := aliceAPI.PostMessage(ctx, room.ID, "one via REST"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, err := ca.Send(ctx, room.ID, fmt.Sprintf("ws %d", i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	_, err = ca.Send(ctx, room.ID, "one too many")
	var we *client.Error
	if !errors.As(err, &we) || we.Code != protocol.CodeRateLimited {
		t.Fatalf("6th message: %v; want error rate_limited", err)
	}
	checkHint(t, "6th message", we.RetryAfterMs, rates["messages"], start)
	_, err = aliceAPI.PostMessage(ctx, room.ID, "REST too")
	if ae := apiErr(t, err); ae.Status != 429 || ae.Code != protocol.CodeRateLimited {
		t.Fatalf("REST post over the user limit: %+v", ae)
	} else {
		checkHTTPHint(t, "REST post over the user limit", ae, rates["messages"], start)
	}

	// Frames: a burst of pings is cut off with a retry hint, and the
	// connection stays usable. The burst is sent at once, 3 times the
	// bucket; a machine too busy to get even that far ahead of the rate
	// sends another.
	limited, bursts := 0, 0
	for ; limited == 0; bursts++ {
		if ctx.Err() != nil {
			t.Fatalf("%d bursts of %d pings, none rate_limited: %v", bursts, 3*rates["frames"].N, ctx.Err())
		}
		errs := make(chan error, 3*rates["frames"].N)
		for range cap(errs) {
			go func() { errs <- cb.Ping(ctx) }()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				if !errors.As(err, &we) || we.Code != protocol.CodeRateLimited {
					t.Fatalf("ping: %v", err)
				}
				limited++
				checkHint(t, "ping in a burst", we.RetryAfterMs, rates["frames"], time.Time{})
			}
		}
	}
	// Nothing is in flight now: a refused ping spends nothing, so one sent
	// after its hint fits.
	if err := cb.Ping(ctx); err != nil {
		if !errors.As(err, &we) || we.Code != protocol.CodeRateLimited {
			t.Fatalf("ping after the burst: %v", err)
		}
		time.Sleep(time.Duration(we.RetryAfterMs) * time.Millisecond)
		if err := cb.Ping(ctx); err != nil {
			t.Fatalf("ping after the hint (%d ms): %v", we.RetryAfterMs, err)
		}
	}
	t.Logf("frames: %d pings limited in %d bursts", limited, bursts)
}

// checkHint checks a refusal's retry_after_ms against what the limiter (GCRA)
// guarantees however the test was scheduled: at most one interval (Per/N),
// and, when the bucket was full at start and the test made every request of
// the burst since then, at least that interval less the time the test has
// taken since (a zero start skips the lower bound).
func checkHint(t *testing.T, what string, gotMs int64, r ratelimit.Rate, start time.Time) {
	t.Helper()
	interval := r.Per / time.Duration(r.N)
	got := time.Duration(gotMs) * time.Millisecond
	low := time.Millisecond
	if !start.IsZero() {
		low = max(low, (interval - time.Since(start)).Truncate(time.Millisecond))
	}
	if got < low || got > interval {
		t.Fatalf("%s: retry_after_ms %d; want %d..%d for %s", what, gotMs, low.Milliseconds(), interval.Milliseconds(), r)
	}
}

// checkHTTPHint is checkHint for a REST refusal, whose Retry-After header is
// retry_after_ms in whole seconds, rounded up.
func checkHTTPHint(t *testing.T, what string, ae *client.APIError, r ratelimit.Rate, start time.Time) {
	t.Helper()
	checkHint(t, what, ae.RetryAfterMs, r, start)
	if want := strconv.FormatInt((ae.RetryAfterMs+999)/1000, 10); ae.RetryAfter != want {
		t.Fatalf("%s: Retry-After %q with retry_after_ms %d; want %q", what, ae.RetryAfter, ae.RetryAfterMs, want)
	}
}

func mustRate(t *testing.T, s string) (r ratelimit.Rate) {
	t.Helper()
	if err := r.Set(s); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRateLimitsOffSwitch: --rate-limits=off (bench-only) lifts every limit
// and says so loudly in the log.
func TestRateLimitsOffSwitch(t *testing.T) {
	cfg, err := server.ParseFlags("t", nil, func(k string) string {
		if k == "UNHIDRA_RATE_LIMITS" {
			return "off"
		}
		return ""
	}, io.Discard)
	if err != nil || cfg.RateLimits != "off" {
		t.Fatalf("UNHIDRA_RATE_LIMITS=off: %+v %v", cfg.RateLimits, err)
	}
	if _, err := server.ParseFlags("t", []string{"--rate-limits=maybe"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("--rate-limits=maybe accepted")
	}
	if _, err := server.ParseFlags("t", []string{"--rate-login=10/fortnight"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("--rate-login=10/fortnight accepted")
	}
	var log syncBuffer
	env := servertest.Start(t, servertest.Options{Log: &log, Config: func(c *server.Config) {
		c.RateLimits = "off"
		c.RateLogin = mustRate(t, "1/h")
	}})
	if !strings.Contains(log.String(), "RATE LIMITS ARE OFF") {
		t.Fatalf("no loud warning in the log:\n%s", log.String())
	}
	a := &client.API{Base: env.URL}
	a.Register(ctx(t), "alice", "password-alice", "")
	for i := 0; i < 5; i++ {
		if _, err := a.Login(ctx(t), "alice", "password-alice"); err != nil {
			t.Fatalf("login %d with limits off: %v", i, err)
		}
	}
}

// --- revocation ------------------------------------------------------------

// TestRevocationClosesLiveSockets is "Done when" 4 and the revocation rows
// of the issue: logout, password change, admin revoke, deactivation, device
// revoke and refresh-token reuse each close the affected live WebSockets
// (goodbye revoked) and leave the others open; the revoked access tokens stop
// working at once.
func TestRevocationClosesLiveSockets(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		admin := env.NewUser(t, "root") // first account: superadmin
		adm := &client.API{Base: env.URL, Token: admin.Token}
		env.NewUser(t, "alice")
		var lat []string
		note := func(what string, d time.Duration) {
			lat = append(lat, fmt.Sprintf("%s %v", what, d.Round(time.Microsecond)))
		}

		login := func(name, pw string) (*client.API, client.Tokens) {
			a := &client.API{Base: env.URL}
			tk, err := a.Login(ctx, name, pw)
			if err != nil {
				t.Fatalf("login %s: %v", name, err)
			}
			return a, tk
		}
		apiA, tA := login("alice", "password-alice")
		_, tB := login("alice", "password-alice")
		apiC, tC := login("alice", "password-alice")
		wsA, wsB, wsC := dialToken(t, env, tA.AccessToken), dialToken(t, env, tB.AccessToken), dialToken(t, env, tC.AccessToken)

		// Logout of C closes C only.
		start := time.Now()
		if err := apiC.Logout(ctx, tC.RefreshToken); err != nil {
			t.Fatal(err)
		}
		note("logout", awaitGoodbye(t, wsC, protocol.ReasonRevoked, start))
		if _, err := apiC.Me(ctx); apiErr(t, err).Status != 401 {
			t.Fatal("access token of a logged-out session still works")
		}

		// Password change from A closes B, keeps A.
		start = time.Now()
		n, err := apiA.ChangePassword(ctx, "password-alice", "new-password-alice")
		if err != nil || n != 2 {
			t.Fatalf("password change: revoked %d, %v; want 2 (B and the NewUser login; C was already out)", n, err)
		}
		note("password change", awaitGoodbye(t, wsB, protocol.ReasonRevoked, start))
		if err := wsA.Ping(ctx); err != nil {
			t.Fatalf("the session that changed the password lost its socket: %v", err)
		}
		if _, err := (&client.API{Base: env.URL}).Refresh(ctx, tB.RefreshToken); apiErr(t, err).Status != 401 {
			t.Fatal("refresh token of a revoked session still works")
		}
		if _, err := (&client.API{Base: env.URL}).Login(ctx, "alice", "password-alice"); apiErr(t, err).Status != 401 {
			t.Fatal("old password still logs in")
		}
		// Wrong current password: refused, nothing revoked.
		if _, err := apiA.ChangePassword(ctx, "not-it-at-all", "whatever-else"); apiErr(t, err).Status != 403 {
			t.Fatalf("password change with a wrong current password: %v", err)
		}
		if _, err := apiA.ChangePassword(ctx, "new-password-alice", "short"); apiErr(t, err).Status != 400 {
			t.Fatalf("password change to a too-short password: %v", err)
		}
		if err := wsA.Ping(ctx); err != nil {
			t.Fatal("failed password changes closed the caller's socket")
		}

		// Admin revokes all of alice's sessions.
		start = time.Now()
		var rv struct {
			Revoked int `json:"revoked_sessions"`
		}
		if err := adm.Do(ctx, "POST", "/v1/admin/users/"+userID(t, adm, "alice")+"/revoke-sessions", nil, &rv); err != nil || rv.Revoked != 1 {
			t.Fatalf("admin revoke: %+v %v", rv, err)
		}
		note("admin revoke", awaitGoodbye(t, wsA, protocol.ReasonRevoked, start))

		// Deactivation ends sessions and logins; reactivation restores logins.
		apiD, tD := login("alice", "new-password-alice")
		wsD := dialToken(t, env, tD.AccessToken)
		start = time.Now()
		if err := adm.Do(ctx, "POST", "/v1/admin/users/"+userID(t, adm, "alice")+"/deactivate", nil, nil); err != nil {
			t.Fatal(err)
		}
		note("deactivate", awaitGoodbye(t, wsD, protocol.ReasonRevoked, start))
		if _, err := apiD.Me(ctx); apiErr(t, err).Status != 401 {
			t.Fatal("deactivated user's token still works")
		}
		if _, err := (&client.API{Base: env.URL}).Login(ctx, "alice", "new-password-alice"); apiErr(t, err).Message != auth.ErrInvalidCredentials.Error() {
			t.Fatalf("deactivated user logs in: %v", err)
		}
		if err := adm.Do(ctx, "POST", "/v1/admin/users/"+userID(t, adm, "alice")+"/reactivate", nil, nil); err != nil {
			t.Fatal(err)
		}

		// Device revoke closes that device's sockets.
		apiE, _ := login("alice", "new-password-alice")
		_, tF := login("alice", "new-password-alice")
		wsF := dialToken(t, env, tF.AccessToken)
		start = time.Now()
		if err := apiE.Do(ctx, "DELETE", "/v1/devices/"+tF.DeviceID, nil, nil); err != nil {
			t.Fatal(err)
		}
		note("device revoke", awaitGoodbye(t, wsF, protocol.ReasonRevoked, start))

		// Refresh-token reuse revokes the session and closes its socket.
		apiG, tG := login("alice", "new-password-alice")
		tG2, err := apiG.Refresh(ctx, tG.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		wsG := dialToken(t, env, tG2.AccessToken)
		start = time.Now()
		if _, err := apiG.Refresh(ctx, tG.RefreshToken); apiErr(t, err).Status != 401 {
			t.Fatal("a reused refresh token was accepted")
		}
		note("refresh reuse", awaitGoodbye(t, wsG, protocol.ReasonRevoked, start))
		if _, err := apiG.Refresh(ctx, tG2.RefreshToken); err == nil {
			t.Fatal("the rotated refresh token survived the reuse")
		}
		// Admin routes are for superadmins only.
		if err := apiE.Do(ctx, "POST", "/v1/admin/users/"+admin.ID+"/revoke-sessions", nil, nil); apiErr(t, err).Status != 403 {
			t.Fatalf("member reached an admin route: %v", err)
		}
		t.Logf("revoke → goodbye latencies: %s", strings.Join(lat, ", "))
	})
}

func userID(t *testing.T, a *client.API, name string) string {
	t.Helper()
	var out struct {
		Users []client.User `json:"users"`
	}
	if err := a.Do(ctx(t), "GET", "/v1/users?q="+name, nil, &out); err != nil || len(out.Users) == 0 {
		t.Fatalf("find %s: %v", name, err)
	}
	return out.Users[0].ID
}

// TestRevocationAcrossNodes: two nodes share Postgres and keys; a session
// revoked on one loses its WebSocket on the other through the revocation poll.
func TestRevocationAcrossNodes(t *testing.T) {
	dsn := servertest.PostgresDSN(t)
	n1 := servertest.Start(t, servertest.Options{DSN: dsn})
	n2 := servertest.Start(t, servertest.Options{DSN: dsn, Config: func(c *server.Config) {
		c.KeysDir = filepath.Join(n1.Config.DataDir, "keys")
	}})
	ctx := ctx(t)
	u := n1.NewUser(t, "alice")
	a := &client.API{Base: n1.URL}
	tk, err := a.Login(ctx, "alice", "password-alice")
	if err != nil {
		t.Fatal(err)
	}
	ws := dialToken(t, n2, tk.AccessToken)
	_ = u
	start := time.Now()
	if err := a.Logout(ctx, tk.RefreshToken); err != nil {
		t.Fatal(err)
	}
	d := awaitGoodbye(t, ws, protocol.ReasonRevoked, start)
	t.Logf("revoked on node 1, socket on node 2 closed after %v (poll interval 500ms)", d.Round(time.Millisecond))
	if _, err := (&client.API{Base: n2.URL, Token: tk.AccessToken}).Me(ctx); apiErr(t, err).Status != 401 {
		t.Fatal("node 2 still accepts the revoked token")
	}
}

// --- registration policy, invites, admin-created accounts ----------------

func TestRegistrationPolicies(t *testing.T) {
	eachBackendWith(t, func(c *server.Config) { c.Registration = "invite" }, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		a := &client.API{Base: env.URL}
		_, err := a.Register(ctx, "root", "password-root", "")
		if ae := apiErr(t, err); ae.Status != 403 {
			t.Fatalf("register without invite: %+v", ae)
		}
		// Bootstrap: the CLI path writes an invite straight into the store.
		inv, err := auth.CreateInvite(ctx, env.Server.Store(), "", auth.InviteRequest{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		reg := func(name, invite string) error {
			return a.Do(ctx, "POST", "/v1/auth/register", map[string]string{"username": name, "password": "password-" + name, "invite": invite}, nil)
		}
		if err := reg("root", inv.Token); err != nil {
			t.Fatalf("register with invite: %v", err)
		}
		if err := reg("eve", inv.Token); apiErr(t, err).Status != 403 {
			t.Fatalf("single-use invite used twice: %v", err)
		}
		if err := reg("eve", "inv_made-up"); apiErr(t, err).Status != 403 {
			t.Fatalf("made-up invite: %v", err)
		}
		root := &client.API{Base: env.URL}
		if _, err := root.Login(ctx, "root", "password-root"); err != nil {
			t.Fatal(err)
		}
		var made auth.InviteView
		if err := root.Do(ctx, "POST", "/v1/admin/invites", map[string]any{"max_uses": 2, "expires_in": 3600, "note": "team"}, &made); err != nil || made.Token == "" {
			t.Fatalf("admin invite: %+v %v", made, err)
		}
		// A taken username does not spend the invite.
		if err := reg("root", made.Token); apiErr(t, err).Status != 409 {
			t.Fatalf("taken name: %v", err)
		}
		if err := reg("bob", made.Token); err != nil {
			t.Fatal(err)
		}
		if err := reg("carol", made.Token); err != nil {
			t.Fatal(err)
		}
		if err := reg("dave", made.Token); apiErr(t, err).Status != 403 {
			t.Fatalf("invite over max_uses: %v", err)
		}
		var list struct {
			Invites []auth.InviteView `json:"invites"`
		}
		if err := root.Do(ctx, "GET", "/v1/admin/invites", nil, &list); err != nil || len(list.Invites) != 2 {
			t.Fatalf("list invites: %+v %v", list, err)
		}
		for _, i := range list.Invites {
			if i.Token != "" {
				t.Fatal("invite listing shows a token; only hashes are stored")
			}
			if i.ID == made.ID && i.Uses != 2 {
				t.Fatalf("invite uses %d, want 2", i.Uses)
			}
		}
		// Revoked invites stop working.
		var third auth.InviteView
		root.Do(ctx, "POST", "/v1/admin/invites", nil, &third)
		if err := root.Do(ctx, "DELETE", "/v1/admin/invites/"+third.ID, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := reg("erin", third.Token); apiErr(t, err).Status != 403 {
			t.Fatalf("revoked invite: %v", err)
		}
		// Bad input changes nothing.
		if err := root.Do(ctx, "POST", "/v1/admin/invites", map[string]any{"max_uses": -1}, nil); apiErr(t, err).Status != 400 {
			t.Fatalf("negative max_uses: %v", err)
		}
		// Members cannot make invites.
		bob := &client.API{Base: env.URL}
		bob.Login(ctx, "bob", "password-bob")
		if err := bob.Do(ctx, "POST", "/v1/admin/invites", nil, nil); apiErr(t, err).Status != 403 {
			t.Fatalf("member made an invite: %v", err)
		}
		// Admins create accounts directly (the way in for "closed").
		if err := root.Do(ctx, "POST", "/v1/admin/users", map[string]string{"username": "frank", "password": "password-frank"}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := (&client.API{Base: env.URL}).Login(ctx, "frank", "password-frank"); err != nil {
			t.Fatalf("admin-created account: %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Registration = "closed" }})
		_, err := (&client.API{Base: env.URL}).Register(ctx(t), "root", "password-root", "")
		if ae := apiErr(t, err); ae.Status != 403 || !strings.Contains(ae.Message, "closed") {
			t.Fatalf("closed registration: %+v", ae)
		}
	})
	t.Run("login by email", func(t *testing.T) {
		env := servertest.Start(t, servertest.Options{})
		a := &client.API{Base: env.URL}
		if _, err := a.Register(ctx(t), "alice", "password-alice", "Alice@Example.com"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Login(ctx(t), "alice@example.com", "password-alice"); err != nil {
			t.Fatalf("login by email: %v", err)
		}
	})
}

func eachBackendWith(t *testing.T, cfg func(*server.Config), f func(t *testing.T, env *servertest.Env)) {
	for _, b := range servertest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f(t, servertest.Start(t, servertest.Options{DSN: b.DSN(t), Config: cfg}))
		})
	}
}

// --- devices ---------------------------------------------------------------

func TestDevices(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		env.NewUser(t, "alice")
		a := &client.API{Base: env.URL}
		if _, err := a.LoginDevice(ctx, "alice", "password-alice", client.Device{Name: "laptop", Platform: "linux"}); err != nil {
			t.Fatal(err)
		}
		var phone auth.DeviceView
		if err := a.Do(ctx, "POST", "/v1/devices", map[string]string{"name": "phone", "platform": "android", "public_key": "curve25519:AAAA"}, &phone); err != nil {
			t.Fatal(err)
		}
		p := &client.API{Base: env.URL}
		tp, err := p.LoginDevice(ctx, "alice", "password-alice", client.Device{ID: phone.ID})
		if err != nil || tp.DeviceID != phone.ID {
			t.Fatalf("login on a registered device: %+v %v", tp, err)
		}
		ws := dialToken(t, env, tp.AccessToken)
		var list struct {
			Devices []auth.DeviceView `json:"devices"`
		}
		if err := p.Do(ctx, "GET", "/v1/devices", nil, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Devices) != 3 { // the NewUser login, laptop, phone
			t.Fatalf("devices: %+v", list.Devices)
		}
		for _, d := range list.Devices {
			if d.ID == phone.ID && (!d.Current || d.PublicKey != "curve25519:AAAA" || d.Platform != "android" || d.LastSeenAt == 0) {
				t.Fatalf("phone: %+v", d)
			}
		}
		var sessions struct {
			Sessions []auth.SessionView `json:"sessions"`
		}
		if err := p.Do(ctx, "GET", "/v1/sessions", nil, &sessions); err != nil {
			t.Fatal(err)
		}
		for _, s := range sessions.Sessions {
			if s.Device == "" {
				t.Fatalf("session without a device: %+v", s)
			}
		}
		// Set the E2EE key slot.
		var upd auth.DeviceView
		if err := p.Do(ctx, "PATCH", "/v1/devices/"+phone.ID, map[string]string{"public_key": "curve25519:BBBB"}, &upd); err != nil || upd.PublicKey != "curve25519:BBBB" {
			t.Fatalf("patch: %+v %v", upd, err)
		}
		// Another user cannot see or revoke alice's device.
		env.NewUser(t, "mallory")
		m := &client.API{Base: env.URL}
		m.Login(ctx, "mallory", "password-mallory")
		if err := m.Do(ctx, "DELETE", "/v1/devices/"+phone.ID, nil, nil); apiErr(t, err).Status != 404 {
			t.Fatalf("mallory revoking alice's device: %v", err)
		}
		if err := m.Do(ctx, "POST", "/v1/devices", map[string]string{"name": strings.Repeat("x", 200)}, nil); apiErr(t, err).Status != 400 {
			t.Fatalf("overlong device name: %v", err)
		}
		// Revoking the device ends its session and its socket.
		start := time.Now()
		if err := a.Do(ctx, "DELETE", "/v1/devices/"+phone.ID, nil, nil); err != nil {
			t.Fatal(err)
		}
		awaitGoodbye(t, ws, protocol.ReasonRevoked, start)
		if _, err := p.LoginDevice(ctx, "alice", "password-alice", client.Device{ID: phone.ID}); apiErr(t, err).Status != 400 {
			t.Fatalf("login on a revoked device: %v", err)
		}
	})
}

// --- secrets in logs -------------------------------------------------------

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestSecretsNeverLogged captures the debug log through register, login,
// refresh, a failed login, a password change, an invite and a logout, and
// looks for every secret involved.
func TestSecretsNeverLogged(t *testing.T) {
	var log syncBuffer
	env := servertest.Start(t, servertest.Options{Log: &log, LogLevel: slog.LevelDebug})
	ctx := ctx(t)
	a := &client.API{Base: env.URL}
	secrets := []string{"Pw-register-4711", "Pw-wrong-0815", "Pw-new-9999"}
	a.Register(ctx, "alice", secrets[0], "")
	tk, err := a.Login(ctx, "alice", secrets[0])
	if err != nil {
		t.Fatal(err)
	}
	a.Login(ctx, "alice", secrets[1])
	a.Login(ctx, "nobody", secrets[1])
	tk2, err := a.Refresh(ctx, tk.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	a.Refresh(ctx, tk.RefreshToken) // reuse: logged as a warning
	tk3, _ := a.Login(ctx, "alice", secrets[0])
	if _, err := a.ChangePassword(ctx, secrets[0], secrets[2]); err != nil {
		t.Fatal(err)
	}
	var inv auth.InviteView
	a.Do(ctx, "POST", "/v1/admin/invites", nil, &inv)
	c, _ := client.Dial(ctx, env.WSURL, client.Options{Token: "forged." + tk3.AccessToken})
	_ = c
	a.Logout(ctx, tk3.RefreshToken)
	env.Stop()
	out := log.String()
	if !strings.Contains(out, "login failed") || !strings.Contains(out, "password changed") {
		t.Fatalf("the log lacks the auth events this test relies on:\n%s", out)
	}
	secrets = append(secrets, tk.AccessToken, tk.RefreshToken, tk2.AccessToken, tk2.RefreshToken, tk3.AccessToken, tk3.RefreshToken, inv.Token)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		probe := s
		if len(probe) > 24 { // any long fragment of a token counts
			probe = probe[len(probe)-24:]
		}
		if strings.Contains(out, probe) {
			t.Errorf("the log contains a secret (%.8s…)", s)
		}
	}
	// Signing keys: no PEM block in the log either.
	if strings.Contains(out, "PRIVATE KEY") {
		t.Error("the log contains a private key")
	}
}

// --- trusted proxies -------------------------------------------------------

// TestTrustedProxies: X-Forwarded-For names the client only when the peer
// is a trusted proxy, and then the rightmost untrusted entry counts (what
// the client wrote to the left is ignored). Lockout then keys by that client.
func TestTrustedProxies(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.TrustedProxies = []string{"127.0.0.2", "10.0.0.0/8"}
		c.LockoutThreshold, c.LockoutIPThreshold, c.LockoutBase = 10, 3, time.Minute
	}})
	env.NewUser(t, "alice")
	login := func(src, xff, pw string) (int, client.Tokens) {
		b, _ := json.Marshal(map[string]string{"username": "alice", "password": pw})
		req, _ := http.NewRequest("POST", env.URL+"/v1/auth/login", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := from(src).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tk client.Tokens
		json.NewDecoder(resp.Body).Decode(&tk)
		return resp.StatusCode, tk
	}
	for _, tc := range []struct{ src, xff, want string }{
		{"127.0.0.2", "203.0.113.7", "203.0.113.7"},
		{"127.0.0.2", "6.6.6.6, 203.0.113.9", "203.0.113.9"},    // client-written entry ignored
		{"127.0.0.2", "203.0.113.10, 10.1.2.3", "203.0.113.10"}, // two trusted hops
		{"127.0.0.3", "203.0.113.8", "127.0.0.3"},               // peer not trusted: header ignored
		{"127.0.0.2", "not-an-ip", "127.0.0.2"},
		{"127.0.0.2", "", "127.0.0.2"},
	} {
		st, tk := login(tc.src, tc.xff, "password-alice")
		if st != 200 {
			t.Fatalf("login via %s with XFF %q: %d", tc.src, tc.xff, st)
		}
		var out struct {
			Sessions []auth.SessionView `json:"sessions"`
		}
		(&client.API{Base: env.URL, Token: tk.AccessToken}).Do(ctx(t), "GET", "/v1/sessions", nil, &out)
		got := ""
		for _, s := range out.Sessions {
			if s.Current {
				got = s.IP
			}
		}
		if got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %q, want %q", tc.src, tc.xff, got, tc.want)
		}
	}
	for i := 0; i < 3; i++ {
		login("127.0.0.2", "198.51.100.1", "wrong-password")
	}
	if st, _ := login("127.0.0.2", "198.51.100.1", "password-alice"); st != 429 {
		t.Fatalf("client behind the proxy not throttled: %d", st)
	}
	if st, _ := login("127.0.0.2", "198.51.100.2", "password-alice"); st != 200 {
		t.Fatalf("another client behind the same proxy: %d", st)
	}
	if _, err := server.ParseFlags("t", []string{"--trusted-proxies=10.0.0.0/33"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}
