package server

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/listener"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{
		"UNHIDRA_ADDR":            "0.0.0.0:9000",
		"UNHIDRA_DATABASE_URL":    "postgres://x@db/unhidra",
		"UNHIDRA_QUEUE_FRAMES":    "128",
		"UNHIDRA_ALLOWED_ORIGINS": "https://a.example, https://b.example",
		"UNHIDRA_IDLE_TIMEOUT":    "90s",
	}
	c, err := ParseFlags("t", []string{"--addr", "127.0.0.1:0", "--queue-bytes", "1048576"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:0" { // the flag wins over the env twin
		t.Errorf("addr = %s", c.Addr)
	}
	if c.DatabaseURL != "postgres://x@db/unhidra" || c.QueueFrames != 128 || c.QueueBytes != 1<<20 || c.IdleTimeout != 90*time.Second {
		t.Errorf("config = %+v", c)
	}
	if c.MaxConns != listener.DefaultMaxConns() || c.MaxConnsPerIP != 1000 || c.HeaderTimeout != 10*time.Second {
		t.Errorf("connection limits = %d, %d, %s; want the defaults", c.MaxConns, c.MaxConnsPerIP, c.HeaderTimeout)
	}
	if len(c.AllowedOrigins) != 2 || c.AllowedOrigins[1] != "https://b.example" {
		t.Errorf("origins = %q", c.AllowedOrigins)
	}
	d, err := ParseFlags("t", nil, func(string) string { return "" }, io.Discard)
	if err != nil || d.Addr != "127.0.0.1:8080" || d.DataDir != "./data" || d.SQLiteSync != "full" {
		t.Fatalf("defaults = %+v, %v", d, err)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--queue-frames", "2"}, nil, "queue-frames"},
		{[]string{"--queue-bytes", "10"}, nil, "queue-bytes"},
		{[]string{"--max-frame", "10"}, nil, "max-frame"},
		{[]string{"--log-level", "verbose"}, nil, "log-level"},
		{nil, map[string]string{"UNHIDRA_LOG_FORMAT": "xml"}, "log-format"},
		{[]string{"--tls-cert", "c.pem"}, nil, "go together"},
		{[]string{"--max-conns", "-1"}, nil, "max-conns"},
		{nil, map[string]string{"UNHIDRA_MAX_CONNS_PER_IP": "-5"}, "max-conns-per-ip"},
		{[]string{"--header-timeout", "0s"}, nil, "header-timeout"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
		{nil, map[string]string{"UNHIDRA_QUEUE_FRAMES": "many"}, `UNHIDRA_QUEUE_FRAMES="many"`},
	} {
		_, err := ParseFlags("t", tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
}
