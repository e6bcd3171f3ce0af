// Command unhidra-bench is Unhidra's load generator. In one run it starts an
// Unhidra server and a reference server (a minimal fasthttp/websocket
// broadcast server: the floor), drives the same scenarios against each from
// several client worker processes, samples CPU and RSS of every process from
// /proc, and prints a Markdown table of medians with Unhidra as a ratio of
// the reference.
//
//	go run ./core/cmd/unhidra-bench                      # standard scenarios, 3 runs
//	go run ./core/cmd/unhidra-bench -runs 1 -scenarios fanout -fanout 1000@100
//	go run ./core/cmd/unhidra-bench -url http://127.0.0.1:8080 -target unhidra
//
// Rate limits are switched off in the server it starts (UNHIDRA_RATE_LIMITS=off,
// a bench-only setting); a server given by -url must be started that way.
// Internal subcommands (the tool forks itself): worker, serve-unhidra,
// serve-reference.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/unhidra/unhidra/core/server"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "worker":
			fs := flag.NewFlagSet("worker", flag.ExitOnError)
			src := fs.String("src", "", "local IP to dial from")
			_ = fs.Parse(os.Args[2:])
			exit(runWorker(*src))
		case "serve-reference":
			fs := flag.NewFlagSet("serve-reference", flag.ExitOnError)
			addr := fs.String("addr", "127.0.0.1:0", "listen address")
			_ = fs.Parse(os.Args[2:])
			exit(runReference(*addr))
		case "serve-unhidra":
			exit(serveUnhidra(os.Args[2:]))
		}
	}
	o, err := parseOptions(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhidra-bench:", err)
		os.Exit(2)
	}
	exit(run(context.Background(), o, os.Stdout))
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhidra-bench:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveUnhidra runs the real server (same code as `unhidra serve`) with the
// given flags and prints its bound address. UNHIDRA_BENCH_CPUPROFILE names a
// file for a CPU profile of the whole server lifetime (the -profile flag sets
// it), so the table's numbers can be explained with `go tool pprof`.
func serveUnhidra(args []string) error {
	cfg, err := server.ParseFlags("serve-unhidra", args, os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if p := os.Getenv("UNHIDRA_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	freeOSMemoryOnSignal()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	addr, err := srv.Listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "listening %s\n", addr)
	if p := os.Getenv("UNHIDRA_BENCH_HEAPPROFILE"); p != "" {
		// SIGUSR1 writes a heap profile (the coordinator sends it while
		// sessions are held, to explain RSS per session).
		usr := make(chan os.Signal, 1)
		signal.Notify(usr, syscall.SIGUSR1)
		go func() {
			for range usr {
				if f, ferr := os.Create(p); ferr == nil {
					_ = pprof.WriteHeapProfile(f)
					f.Close()
				}
				// Where the RSS goes: heap vs goroutine stacks vs runtime.
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				_ = os.WriteFile(p+".memstats.txt", []byte(fmt.Sprintf(
					"goroutines %d\nHeapInuse %d\nStackInuse %d\nMSpanInuse %d\nGCSys %d\nOtherSys %d\nHeapIdle-HeapReleased %d\nSys %d\n",
					runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse, ms.MSpanInuse, ms.GCSys, ms.OtherSys,
					ms.HeapIdle-ms.HeapReleased, ms.Sys)), 0o644)
			}
		}()
	}
	return srv.Serve(ctx)
}

// freeOSMemoryOnSignal makes SIGUSR2 run a GC and return freed memory to the
// OS, so that RSS samples taken before and after opening sessions compare
// live memory rather than garbage not yet scavenged (setup hashes passwords
// with argon2id, 19 MiB each). Both servers under test get the same hook.
func freeOSMemoryOnSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	go func() {
		for range c {
			debug.FreeOSMemory()
		}
	}()
}
