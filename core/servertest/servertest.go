// Package servertest starts real Unhidra servers for tests: a real listener,
// real database (SQLite in a temp dir, or a fresh Postgres database when
// UNHIDRA_TEST_POSTGRES names a server), and real clients.
package servertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for creating test databases

	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// PostgresEnv names the env var holding an admin DSN of a Postgres server
// for tests, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const PostgresEnv = "UNHIDRA_TEST_POSTGRES"

// RequireEnv, when set to 1, turns every "skip: program missing" into a
// failure. .ci/run sets it so that nothing skips in CI.
const RequireEnv = "UNHIDRA_TEST_REQUIRE_ALL"

// SkipOrFail skips the test with reason, or fails it when RequireEnv is set.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("required by %s=1 but unavailable: %s", RequireEnv, reason)
	}
	t.Skip(reason)
}

// Backend is a database to run a test against.
type Backend struct {
	Name string // "sqlite" or "postgres"
	// DSN returns a database URL for a fresh, empty database ("" for SQLite).
	DSN func(t testing.TB) string
}

// Backends returns SQLite and, when configured, Postgres. Run each with t.Run.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", DSN: func(testing.TB) string { return "" }},
		{Name: "postgres", DSN: PostgresDSN},
	}
}

// PostgresDSN creates a fresh database on the test Postgres server, drops it
// when the test ends, and returns its URL. It skips (or fails, see
// RequireEnv) when no server is configured.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		SkipOrFail(t, "Postgres tests need "+PostgresEnv+" (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); .ci/run starts Debian's PostgreSQL and sets it")
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "unhidra_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		SkipOrFail(t, fmt.Sprintf("Postgres at %s is not usable: %v", PostgresEnv, err))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Env is a running server.
type Env struct {
	Server *server.Server
	Config server.Config
	URL    string // http://127.0.0.1:port (https:// with TLS)
	WSURL  string // ws://127.0.0.1:port/v1/ws (wss:// with TLS)
	// ClientTLS is Options.ClientTLS: what NewUser and Dial trust.
	ClientTLS *tls.Config
	cancel    context.CancelFunc
	done      chan error
}

// Options tweak the server a test starts.
type Options struct {
	DSN    string
	Config func(*server.Config)
	// Log receives the server log (default: discarded unless -v).
	Log io.Writer
	// LogLevel is the server's log level (nil: warn).
	LogLevel slog.Leveler
	// RateLimits turns the rate limits on. Tests start with them off (as
	// with --rate-limits=off) because most tests register and send faster
	// than the production defaults allow; tests of the limits turn them on.
	RateLimits bool
	// ClientTLS is the client side of a TLS server (Config sets TLSCert):
	// NewUser and Dial use it.
	ClientTLS *tls.Config
}

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = o.DSN
	cfg.SQLiteSync = "normal"
	cfg.DrainTimeout = 5 * time.Second
	if !o.RateLimits {
		cfg.RateLimits = "off"
	}
	cfg.Plugins = "" // tests name their own plugins file
	if o.Config != nil {
		o.Config(&cfg)
	}
	w := o.Log
	if w == nil {
		w = io.Discard
		if testing.Verbose() {
			w = os.Stderr
		}
	}
	lvl := o.LogLevel
	if lvl == nil {
		lvl = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	addr, err := srv.Listen()
	if err != nil {
		cancel()
		t.Fatalf("listen: %v", err)
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	e := &Env{Server: srv, Config: cfg, URL: scheme + "://" + addr.String(), ClientTLS: o.ClientTLS, cancel: cancel, done: make(chan error, 1)}
	e.WSURL = (&client.API{Base: e.URL}).WSURL()
	go func() { e.done <- srv.Serve(ctx) }()
	t.Cleanup(func() { e.Stop() })
	return e
}

// Stop drains the server and waits for it to finish.
func (e *Env) Stop() error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	e.cancel = nil
	return <-e.done
}

// SigningKey returns the server's current token signing key (its kid and
// private key), for tests that forge or re-sign tokens.
func (e *Env) SigningKey(t testing.TB) (kid string, key any) {
	t.Helper()
	kid, _ = e.Server.Auth().SigningKey()
	b, err := os.ReadFile(filepath.Join(e.Config.DataDir, "keys", kid+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("signing key %s is not PEM", kid)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return kid, k
}

// User is a registered, logged-in account.
type User struct {
	client.User
	API   *client.API
	Token string
}

// NewUser registers and logs in name (password "password-"+name).
func (e *Env) NewUser(t testing.TB, name string) User {
	t.Helper()
	ctx := context.Background()
	a := e.API()
	u, err := a.Register(ctx, name, "password-"+name, "")
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	tok, err := a.Login(ctx, name, "password-"+name)
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return User{User: u, API: a, Token: tok.AccessToken}
}

// API returns an unauthenticated REST client for the server.
func (e *Env) API() *client.API {
	a := &client.API{Base: e.URL}
	if e.ClientTLS != nil {
		a.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: e.ClientTLS}}
	}
	return a
}

// Dial opens a WebSocket session for u, closed when the test ends.
func (e *Env) Dial(t testing.TB, u User) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, e.WSURL, client.Options{Token: u.Token, TLSConfig: e.ClientTLS})
	if err != nil {
		t.Fatalf("dial as %s: %v", u.Username, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Next returns the next event of one of the given types from c, failing the
// test after timeout.
func Next(t testing.TB, c *client.Conn, timeout time.Duration, types ...string) (f protocol.Frame) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("connection closed while waiting for %v: %v", types, c.Err())
			}
			if len(types) == 0 {
				return ev
			}
			for _, ty := range types {
				if ev.Type == ty {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %s event within %v", strings.Join(types, "/"), timeout)
		}
	}
}

// NextWhere returns the next event from c for which match is true.
func NextWhere(t testing.TB, c *client.Conn, timeout time.Duration, what string, match func(protocol.Frame) bool) protocol.Frame {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("connection closed while waiting for %s: %v", what, c.Err())
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

// SelfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a client config that trusts it.
func SelfSigned(t testing.TB) (certFile, keyFile string, cfg *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unhidra test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
