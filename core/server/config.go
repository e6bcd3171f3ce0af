package server

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything `unhidra serve` takes. Every flag has an env twin
// (UNHIDRA_ + upper-case name with '-' → '_'); flags win over env.
type Config struct {
	Addr           string
	DataDir        string
	DatabaseURL    string
	Plugins        string
	AllowedOrigins []string
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
}

// DefaultConfig is what `go run ./core/cmd/unhidra` uses.
func DefaultConfig() Config {
	return Config{
		Addr: "127.0.0.1:8080", DataDir: "./data", Plugins: "plugins.yaml", MaxFrame: 64 << 10,
		PingInterval: 25 * time.Second, IdleTimeout: 60 * time.Second,
		QueueFrames: 4096, QueueBytes: 4 << 20, WriteTimeout: 10 * time.Second, DrainTimeout: 15 * time.Second,
		SQLiteSync: "full", Registration: "open", LogLevel: "info", LogFormat: "text",
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
	origins := ""
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (host:port)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (SQLite database, keys)")
	fs.StringVar(&c.DatabaseURL, "db", c.DatabaseURL, "Postgres URL (postgres://…); empty means SQLite in --data")
	fs.StringVar(&c.Plugins, "plugins", c.Plugins, "plugins.yaml path")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated browser origins allowed to open WebSockets (the server's own origin is always allowed)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves https/wss")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.Int64Var(&c.MaxFrame, "max-frame", c.MaxFrame, "largest client WebSocket frame in bytes")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "server ping interval")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "close sessions silent for this long")
	fs.IntVar(&c.QueueFrames, "queue-frames", c.QueueFrames, "per-session outbound queue bound in frames (slow consumers over it are closed)")
	fs.IntVar(&c.QueueBytes, "queue-bytes", c.QueueBytes, "per-session outbound queue bound in bytes")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "longest a single socket write may block")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "how long SIGTERM waits for sessions to close")
	fs.StringVar(&c.SQLiteSync, "sqlite-sync", c.SQLiteSync, "SQLite synchronous mode: full or normal")
	fs.StringVar(&c.Registration, "registration", c.Registration, "account registration: open or closed")
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
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.QueueFrames < 16 || c.QueueBytes < 64<<10 {
		return c, fmt.Errorf("--queue-frames %d / --queue-bytes %d: at least 16 frames and 65536 bytes", c.QueueFrames, c.QueueBytes)
	}
	if c.MaxFrame < 1024 {
		return c, fmt.Errorf("--max-frame %d: at least 1024", c.MaxFrame)
	}
	return c, nil
}

// Getenv is os.Getenv (a seam for tests).
var Getenv = os.Getenv

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
