package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/core/server"
)

// TestMissingPluginsFile: at the default path a missing plugins file means
// no plugins (and a log line says so); named explicitly, by flag or
// environment, a missing file stops the start with an error naming it.
func TestMissingPluginsFile(t *testing.T) {
	t.Chdir(t.TempDir()) // no plugins.yaml here
	start := func(args []string, env map[string]string, log io.Writer) error {
		t.Helper()
		cfg, err := server.ParseFlags("unhidra serve", args, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Addr, cfg.DataDir, cfg.SQLiteSync = "127.0.0.1:0", t.TempDir(), "normal"
		srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(log, nil)))
		if err == nil {
			srv.Close()
		}
		return err
	}
	var log bytes.Buffer
	if err := start(nil, nil, &log); err != nil {
		t.Fatalf("default plugins file missing: %v", err)
	}
	if !strings.Contains(log.String(), "no plugins file") || !strings.Contains(log.String(), "plugins.yaml") {
		t.Errorf("no log line about the missing default plugins file:\n%s", log.String())
	}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		file string
	}{
		{"flag, default name", []string{"--plugins", "plugins.yaml"}, nil, "plugins.yaml"},
		{"environment, default name", nil, map[string]string{"UNHIDRA_PLUGINS": "plugins.yaml"}, "plugins.yaml"},
		{"flag, other name", []string{"--plugins", "mine.yaml"}, nil, "mine.yaml"},
	} {
		err := start(c.args, c.env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.file) {
			t.Errorf("%s: missing %s: err = %v, want an error naming it", c.name, c.file, err)
		}
	}
}
