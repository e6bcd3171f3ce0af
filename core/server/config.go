package server

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/unhidra/unhidra/core/clientip"
	"github.com/unhidra/unhidra/core/listener"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/secevent"
)

// Config is everything `unhidra serve` takes. Every flag has an env twin
// (UNHIDRA_ + upper-case name with '-' → '_'); flags win over env.
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	Plugins     string
	// PluginsNamed is true when Plugins was given (--plugins or
	// UNHIDRA_PLUGINS) rather than defaulted: a missing file is then an
	// error, while a missing default file means no plugins.
	PluginsNamed   bool
	AllowedOrigins []string
	// TrustedProxies are addresses/CIDRs of reverse proxies whose
	// X-Forwarded-For is believed (for lockout and rate limits).
	TrustedProxies []string
	TLSCert        string
	TLSKey         string
	MaxFrame       int64
	PingInterval   time.Duration
	IdleTimeout    time.Duration
	// QueueFrames and QueueBytes bound each session's outbound queue; a
	// session over either is closed as a slow consumer.
	QueueFrames  int
	QueueBytes   int
	WriteTimeout time.Duration
	DrainTimeout time.Duration
	SQLiteSync   string
	Registration string
	LogLevel     string
	LogFormat    string

	// MaxConns caps open TCP connections (0: none) and MaxConnsPerIP those
	// from one client address, IPv6 by /64 (0: none); connections over a
	// cap are closed at accept. HeaderTimeout closes a connection that
	// sends no complete request line and headers in time.
	MaxConns      int
	MaxConnsPerIP int
	HeaderTimeout time.Duration

	// Tokens and keys (see docs/operations.md, "Accounts, tokens and limits").
	JWTAlg         string // EdDSA or RS256
	AccessTTL      time.Duration
	RefreshTTL     time.Duration
	KeysDir        string // default DataDir/keys
	KeyRotation    time.Duration
	KeyPublishLead time.Duration
	Argon2Time     uint
	Argon2Memory   uint // KiB
	Argon2Threads  uint

	// Lockout.
	LockoutThreshold   int
	LockoutIPThreshold int
	LockoutWindow      time.Duration
	LockoutBase        time.Duration
	LockoutMax         time.Duration

	// Rate limits. RateLimits "off" is a bench-only switch that disables all
	// of them (logged loudly at start).
	RateLimits       string
	RateLogin        ratelimit.Rate
	RateRegister     ratelimit.Rate
	RateIP           ratelimit.Rate
	RateUserMessages ratelimit.Rate
	// RateUserActions limits joins, leaves and read receipts per user;
	// RateUserRooms room creations per user.
	RateUserActions ratelimit.Rate
	RateUserRooms   ratelimit.Rate
	RateFrames      ratelimit.Rate
	// MaxUserSessions caps a user's active sessions (logins); a login over
	// it ends the least recently used one. 0: no cap. Not a rate: it stays
	// with --rate-limits=off.
	MaxUserSessions int
	// SecurityEventsMax is how many security events the outbox keeps
	// (older ones are pruned; a plugin behind the window gets gap: true).
	SecurityEventsMax int64
	// PluginReattach is UNHIDRA_PLUGIN_REATTACH (no flag): plugins to attach
	// to instead of starting, for debugging (docs/plugins.md).
	PluginReattach string
	// Builtins names the first-party plugins this binary can run as
	// `unhidra plugin <name>` (set by the command, not by flags).
	Builtins []string
	// PluginExecutable runs builtin plugins (default: this executable).
	PluginExecutable string
}

// DefaultConfig is what `go run ./core/cmd/unhidra` uses.
func DefaultConfig() Config {
	return Config{
		Addr: "127.0.0.1:8080", DataDir: "./data", Plugins: "plugins.yaml", MaxFrame: 64 << 10,
		PingInterval: 25 * time.Second, IdleTimeout: 60 * time.Second,
		QueueFrames: 4096, QueueBytes: 4 << 20, WriteTimeout: 10 * time.Second, DrainTimeout: 15 * time.Second,
		MaxConns: listener.DefaultMaxConns(), MaxConnsPerIP: 1000, HeaderTimeout: 10 * time.Second,
		SQLiteSync: "full", Registration: "open", LogLevel: "info", LogFormat: "text",

		JWTAlg: "EdDSA", AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour,
		KeyRotation: 30 * 24 * time.Hour, KeyPublishLead: 10 * time.Minute,
		Argon2Time: 2, Argon2Memory: 19 * 1024, Argon2Threads: 1,

		LockoutThreshold: 5, LockoutIPThreshold: 20, LockoutWindow: 15 * time.Minute,
		LockoutBase: time.Minute, LockoutMax: time.Hour,

		// 60 registrations an hour per address lets an office of 50 behind
		// one NAT address sign up together; login lockout, not this rate,
		// is what stops password guessing.
		RateLimits: "on", RateLogin: ratelimit.Rate{N: 10, Per: time.Minute}, RateRegister: ratelimit.Rate{N: 60, Per: time.Hour},
		RateIP: ratelimit.Rate{N: 60, Per: time.Minute}, RateUserMessages: ratelimit.Rate{N: 30, Per: time.Minute},
		RateUserActions: ratelimit.Rate{N: 120, Per: time.Minute}, RateUserRooms: ratelimit.Rate{N: 60, Per: time.Hour},
		RateFrames: ratelimit.Rate{N: 50, Per: time.Second}, MaxUserSessions: 100,

		SecurityEventsMax: secevent.DefaultMax,
	}
}

type envVar struct {
	name, flag string
}

// ParseFlags fills a Config from args and the environment.
func ParseFlags(name string, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	origins, proxies := "", ""
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (host:port)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (SQLite database, keys)")
	fs.StringVar(&c.DatabaseURL, "db", c.DatabaseURL, "Postgres URL (postgres://…); empty means SQLite in --data")
	fs.StringVar(&c.Plugins, "plugins", c.Plugins, "plugins.yaml path")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated browser origins allowed to open WebSockets (the server's own origin is always allowed)")
	fs.StringVar(&proxies, "trusted-proxies", "", "comma-separated reverse-proxy addresses or CIDRs whose X-Forwarded-For names the client (default: none; the TCP peer is the client)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves https/wss")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.Int64Var(&c.MaxFrame, "max-frame", c.MaxFrame, "largest client WebSocket frame in bytes")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "server ping interval")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "close sessions silent for this long")
	fs.IntVar(&c.QueueFrames, "queue-frames", c.QueueFrames, "per-session outbound queue bound in frames (slow consumers over it are closed)")
	fs.IntVar(&c.QueueBytes, "queue-bytes", c.QueueBytes, "per-session outbound queue bound in bytes")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "longest a single socket write may block")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "most TCP connections open at once; more are closed at accept (0: no cap; default: the open-file limit minus 1000)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "most TCP connections open at once from one client address, IPv6 by /64; trusted proxies are exempt (0: no cap)")
	fs.DurationVar(&c.HeaderTimeout, "header-timeout", c.HeaderTimeout, "close a connection that sends no complete request line and headers within this time")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "how long SIGTERM waits for sessions to close")
	fs.StringVar(&c.SQLiteSync, "sqlite-sync", c.SQLiteSync, "SQLite synchronous mode: full or normal")
	fs.StringVar(&c.Registration, "registration", c.Registration, "account registration: open, invite (needs an invite token) or closed (admins create accounts)")
	fs.StringVar(&c.JWTAlg, "jwt-alg", c.JWTAlg, "access-token signing algorithm for new keys: EdDSA or RS256")
	fs.DurationVar(&c.AccessTTL, "access-ttl", c.AccessTTL, "access-token lifetime")
	fs.DurationVar(&c.RefreshTTL, "refresh-ttl", c.RefreshTTL, "session (refresh-token) lifetime")
	fs.StringVar(&c.KeysDir, "keys-dir", "", "signing-key directory (default <data>/keys)")
	fs.DurationVar(&c.KeyRotation, "key-rotation", c.KeyRotation, "rotate the signing key when it is this old (0: only by hand, unhidra keys rotate)")
	fs.DurationVar(&c.KeyPublishLead, "key-publish-lead", c.KeyPublishLead, "how long a new key is in the JWKS before it signs")
	fs.UintVar(&c.Argon2Time, "argon2-time", c.Argon2Time, "argon2id passes for new password hashes")
	fs.UintVar(&c.Argon2Memory, "argon2-memory", c.Argon2Memory, "argon2id memory in KiB for new password hashes")
	fs.UintVar(&c.Argon2Threads, "argon2-threads", c.Argon2Threads, "argon2id lanes for new password hashes")
	fs.IntVar(&c.LockoutThreshold, "lockout-threshold", c.LockoutThreshold, "failed logins per account within --lockout-window that lock it")
	fs.IntVar(&c.LockoutIPThreshold, "lockout-ip-threshold", c.LockoutIPThreshold, "failed logins per client address within --lockout-window that throttle it")
	fs.DurationVar(&c.LockoutWindow, "lockout-window", c.LockoutWindow, "window in which failed logins are counted")
	fs.DurationVar(&c.LockoutBase, "lockout-base", c.LockoutBase, "first lockout; each further lockout doubles it")
	fs.DurationVar(&c.LockoutMax, "lockout-max", c.LockoutMax, "longest lockout")
	fs.StringVar(&c.RateLimits, "rate-limits", c.RateLimits, "on, or off to disable every rate limit (BENCHMARKS ONLY)")
	fs.Var(&c.RateLogin, "rate-login", "logins per client address (N/s|min|h|d)")
	fs.Var(&c.RateRegister, "rate-register", "registrations per client address")
	fs.Var(&c.RateIP, "rate-ip", "WebSocket handshakes and other auth calls per client address")
	fs.Var(&c.RateUserMessages, "rate-user-messages", "messages (sends, edits, deletes, reactions) per user")
	fs.Var(&c.RateUserActions, "rate-user-actions", "joins, leaves and read receipts per user")
	fs.Var(&c.RateUserRooms, "rate-user-rooms", "room creations per user")
	fs.IntVar(&c.MaxUserSessions, "max-user-sessions", c.MaxUserSessions, "active sessions (logins) per user; a login over it ends the least recently used (0: no cap)")
	fs.Var(&c.RateFrames, "rate-frames", "client frames per WebSocket connection")
	fs.Int64Var(&c.SecurityEventsMax, "security-events-max", c.SecurityEventsMax, "security events the database keeps (the oldest are pruned)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	// Env twins: apply before parsing flags so flags override.
	env := map[string]string{"db": "UNHIDRA_DATABASE_URL"}
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		key := env[f.Name]
		if key == "" {
			key = "UNHIDRA_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		}
		if v := getenv(key); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", key, v, err))
			}
		}
	})
	if len(errs) > 0 {
		return c, fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	c.PluginReattach = getenv("UNHIDRA_PLUGIN_REATTACH")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.PluginsNamed = getenv("UNHIDRA_PLUGINS") != ""
	fs.Visit(func(f *flag.Flag) { c.PluginsNamed = c.PluginsNamed || f.Name == "plugins" })
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	if _, err := clientip.New(c.TrustedProxies); err != nil {
		return c, fmt.Errorf("--trusted-proxies: %w", err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.RateLimits != "on" && c.RateLimits != "off" {
		return c, fmt.Errorf("--rate-limits %q: want on or off", c.RateLimits)
	}
	if c.Argon2Threads > 255 || c.Argon2Memory > 4<<20 || c.Argon2Time > 100 {
		return c, fmt.Errorf("argon2 parameters t=%d m=%d p=%d are out of range (t ≤ 100, m ≤ 4 GiB, p ≤ 255)", c.Argon2Time, c.Argon2Memory, c.Argon2Threads)
	}
	if c.QueueFrames < 16 || c.QueueBytes < 64<<10 {
		return c, fmt.Errorf("--queue-frames %d / --queue-bytes %d: at least 16 frames and 65536 bytes", c.QueueFrames, c.QueueBytes)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if c.MaxUserSessions < 0 {
		return c, fmt.Errorf("--max-user-sessions %d: 0 (no cap) or more", c.MaxUserSessions)
	}
	if c.MaxConns < 0 || c.MaxConnsPerIP < 0 {
		return c, fmt.Errorf("--max-conns %d / --max-conns-per-ip %d: want 0 (no cap) or more", c.MaxConns, c.MaxConnsPerIP)
	}
	if c.HeaderTimeout <= 0 {
		return c, fmt.Errorf("--header-timeout %s: want a positive duration", c.HeaderTimeout)
	}
	if c.SecurityEventsMax < 1 {
		return c, fmt.Errorf("--security-events-max %d: at least 1", c.SecurityEventsMax)
	}
	if c.MaxFrame < 1024 {
		return c, fmt.Errorf("--max-frame %d: at least 1024", c.MaxFrame)
	}
	return c, nil
}

// Getenv is os.Getenv (a seam for tests).
var Getenv = os.Getenv

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
