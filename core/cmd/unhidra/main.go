// Command unhidra is the one Unhidra binary.
//
//	unhidra [serve] [--addr 127.0.0.1:8080] [--data ./data] [--db postgres://…] [--plugins plugins.yaml]
//	unhidra keys rotate|list [--data ./data] [--keys-dir DIR] [--alg EdDSA|RS256] [--publish-lead 10m]
//	unhidra invite [--data ./data] [--db postgres://…] [--uses 1] [--expires 168h] [--note text]
//	unhidra version
//	unhidra plugin <name>   (started by the server; runs a first-party plugin)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/sdk/plugin"
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "keys":
		return keysCmd(args, stdout, stderr)
	case "invite":
		return inviteCmd(args, stdout, stderr)
	case "plugin":
		return runPlugin(args, stderr)
	case "version":
		fmt.Fprintln(stdout, "unhidra", version)
		return 0
	case "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "unhidra: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  unhidra [serve] [flags]   run the server (the default command); see unhidra serve -h
  unhidra keys rotate       publish the next signing key (signs after --publish-lead)
  unhidra keys list         list signing keys and their activation times
  unhidra invite            create a registration invite (for --registration=invite)
  unhidra version           print the version
  unhidra plugin <name>     run a first-party plugin (the server starts these itself)
`)
}

func serve(args []string, stdout, stderr io.Writer) int {
	cfg, err := server.ParseFlags("unhidra serve", args, os.Getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "unhidra:", err)
		return 2
	}
	cfg.Builtins = plugin.Builtins()
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	addr, err := srv.Listen()
	if err != nil {
		log.Error("start failed", "err", err)
		srv.Close() // stops the plugins it already started
		return 1
	}
	scheme, ws := "http", "ws"
	if cfg.TLSCert != "" {
		scheme, ws = "https", "wss"
	}
	fmt.Fprintf(stdout, "Unhidra %s serving on %s://%s  (WebSocket: %s://%s/v1/ws, data: %s)\n",
		version, scheme, addr, ws, addr, where(cfg))
	if cfg.RateLimits == "off" {
		fmt.Fprintln(stdout, "WARNING: rate limits are OFF (--rate-limits=off). Bench-only setting; never expose this server.")
	}
	// SIGHUP re-reads plugins.yaml; sessions stay connected.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := srv.ReloadPlugins(ctx); err != nil {
					log.Error("plugins.yaml rejected on SIGHUP; running set unchanged", "err", err)
				}
			}
		}
	}()
	if err := srv.Serve(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

func where(cfg server.Config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return cfg.DataDir
}

func newLogger(cfg server.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
