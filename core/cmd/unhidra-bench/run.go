package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/unhidra/unhidra/sdk/client"
)

type fanoutSpec struct {
	Members int     // subscriber sessions in the room
	Rate    float64 // publishes per second
}

func (f fanoutSpec) String() string { return fmt.Sprintf("%d@%g", f.Members, f.Rate) }

type options struct {
	Targets     []string
	URL         string
	Runs        int
	Workers     int
	Users       int
	Sessions    int
	HoldAt      int
	Hold        time.Duration
	ConnectRate float64
	Scenarios   map[string]bool
	Fanout      []fanoutSpec
	Duration    time.Duration
	Size        int
	SendPubs    int
	SendWindow  int
	Churn       time.Duration
	ChurnConc   int
	Out         string
	ProfileDir  string
	ServerArgs  []string
	ServerPid   int // with URL: the server's pid for /proc sampling

	// Soak scenario (soak.go).
	SoakDuration time.Duration
	SoakIdle     int
	SoakFlood    int
	SoakChat     int
	SoakRate     float64
	SoakRSSMB    int
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("unhidra-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "unhidra,reference", "servers to measure: unhidra, reference or both (comma-separated)")
	fs.StringVar(&o.URL, "url", "", "measure this running Unhidra server (http://host:port) instead of starting one; server CPU/RSS need -server-pid")
	fs.IntVar(&o.ServerPid, "server-pid", 0, "with -url: the server's pid, for /proc sampling")
	fs.IntVar(&o.Runs, "runs", 3, "runs per target; the table shows medians")
	fs.IntVar(&o.Workers, "workers", 2, "client worker processes (each stays under its file limit)")
	fs.IntVar(&o.Users, "users", 100, "accounts to register; sessions are spread over them (argon2id makes each one cost ~0.1 s of CPU)")
	fs.IntVar(&o.Sessions, "sessions", 19500, "connect: sessions to open and hold")
	fs.IntVar(&o.HoldAt, "measure-at", 15000, "connect: handshakes/s is measured for the sessions opened after this many are held")
	fs.DurationVar(&o.Hold, "hold", 30*time.Second, "connect: how long to hold the sessions (the goal is 10m)")
	fs.Float64Var(&o.ConnectRate, "connect-rate", 0, "connect: target handshakes/s for the first -measure-at sessions (0: as fast as possible)")
	scen := fs.String("scenarios", "connect,churn,fanout,sends", "scenarios to run: connect, churn, fanout, sends, soak (soak is not in the standard run)")
	fan := fs.String("fanout", "1000@100,1000@300,10000@15", "fanout scenarios: room sessions @ publishes/s, comma-separated")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "fanout and sends: measuring time per scenario")
	fs.IntVar(&o.Size, "size", 64, "message text size in bytes")
	fs.IntVar(&o.SendPubs, "send-pubs", 32, "sends: publisher sessions, each in its own room")
	fs.IntVar(&o.SendWindow, "send-window", 16, "sends: unacknowledged sends per publisher")
	fs.DurationVar(&o.Churn, "churn", 10*time.Second, "churn: how long to open and close sessions")
	fs.IntVar(&o.ChurnConc, "churn-conc", 32, "churn: concurrent open/close loops per worker")
	fs.StringVar(&o.Out, "out", "", "also write the results table to this file (e.g. bench-results/2026-11-27.md)")
	fs.StringVar(&o.ProfileDir, "profile", "", "write server CPU and heap profiles (per target and run) into this directory")
	fs.DurationVar(&o.SoakDuration, "soak-duration", 10*time.Minute, "soak: how long the chat sessions chat under the floods")
	fs.IntVar(&o.SoakIdle, "soak-idle", 19000, fmt.Sprintf("soak: idle TCP connections (%d per worker process)", idleProcs))
	fs.IntVar(&o.SoakFlood, "soak-flood", 1000, "soak: signed-in sessions that flood pings and never read")
	fs.IntVar(&o.SoakChat, "soak-chat", 100, "soak: well-behaved sessions chatting in rooms of 10 (at most -users)")
	fs.Float64Var(&o.SoakRate, "soak-rate", 1, "soak: messages/s each chat session sends")
	fs.IntVar(&o.SoakRSSMB, "soak-rss-mb", 1536, "soak: the server RSS bound in MB the run is checked against")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.ServerArgs = fs.Args()
	for _, t := range strings.Split(*target, ",") {
		switch t = strings.TrimSpace(t); t {
		case "unhidra", "reference":
			o.Targets = append(o.Targets, t)
		case "both":
			o.Targets = append(o.Targets, "unhidra", "reference")
		case "":
		default:
			return o, fmt.Errorf("-target %q: want unhidra, reference or both", t)
		}
	}
	o.Scenarios = map[string]bool{}
	for _, s := range strings.Split(*scen, ",") {
		switch s = strings.TrimSpace(s); s {
		case "connect", "churn", "fanout", "sends", "soak":
			o.Scenarios[s] = true
		case "":
		default:
			return o, fmt.Errorf("-scenarios: unknown scenario %q (want connect, churn, fanout, sends, soak)", s)
		}
	}
	for _, f := range strings.Split(*fan, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		m, r, ok := strings.Cut(f, "@")
		mi, err1 := strconv.Atoi(m)
		rf, err2 := strconv.ParseFloat(r, 64)
		if !ok || err1 != nil || err2 != nil || mi <= 0 || rf <= 0 {
			return o, fmt.Errorf("-fanout %q: want MEMBERS@RATE, e.g. 1000@100", f)
		}
		o.Fanout = append(o.Fanout, fanoutSpec{mi, rf})
	}
	switch {
	case o.Runs < 1, o.Workers < 1, o.Users < 1, o.Sessions < 0, o.HoldAt < 0 || o.HoldAt > o.Sessions:
		return o, fmt.Errorf("-runs, -workers and -users must be ≥ 1 and 0 ≤ -measure-at ≤ -sessions")
	case o.SendPubs < 1 || o.SendWindow < 1:
		return o, fmt.Errorf("-send-pubs and -send-window must be ≥ 1")
	case o.SoakChat < 1 || o.SoakIdle < 0 || o.SoakFlood < 0 || o.SoakRate <= 0 || o.SoakDuration <= 0:
		return o, fmt.Errorf("-soak-chat and -soak-rate must be > 0, -soak-idle and -soak-flood ≥ 0, -soak-duration positive")
	}
	return o, nil
}

// target is one server under test with its client workers.
type target struct {
	name    string
	addr    string // host:port
	cmd     *exec.Cmd
	pid     int
	workers []*workerProc
	tokens  []string
	users   []client.User
	api     *client.API
	fanRoom string
}

type workerProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	mu  sync.Mutex
}

func (w *workerProc) call(c command) (reply, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, _ := json.Marshal(c)
	if _, err := w.in.Write(append(b, '\n')); err != nil {
		return reply{}, fmt.Errorf("worker %d: %w", w.cmd.Process.Pid, err)
	}
	if !w.out.Scan() {
		return reply{}, fmt.Errorf("worker %d exited: %v", w.cmd.Process.Pid, w.out.Err())
	}
	var r reply
	if err := json.Unmarshal(w.out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("worker reply %q: %w", w.out.Text(), err)
	}
	return r, nil
}

// all sends a command (built per worker index) to every worker at once.
func (t *target) all(mk func(i int) command) ([]reply, error) {
	out := make([]reply, len(t.workers))
	errs := make([]error, len(t.workers))
	var wg sync.WaitGroup
	for i, w := range t.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = w.call(mk(i))
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return out, e
		}
	}
	return out, nil
}

func (t *target) workerPids() []int {
	var p []int
	for _, w := range t.workers {
		p = append(p, w.cmd.Process.Pid)
	}
	return p
}

func (t *target) server() procStat {
	if t.pid == 0 {
		return procStat{}
	}
	s, _ := readProc(t.pid)
	return s
}

func (t *target) wsPath(room string) string {
	if t.name == "reference" {
		return "/ws?room=" + room
	}
	return "/v1/ws"
}

// startChild starts this binary with args and waits for "listening ADDR".
func startChild(args []string, env []string) (*exec.Cmd, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return cmd, a, nil
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, "", fmt.Errorf("%s did not start", args[0])
}

func (t *target) start(ctx context.Context, o options, run int, dataDir string) error {
	if t.name == "unhidra" && o.URL != "" {
		u := strings.TrimPrefix(strings.TrimPrefix(o.URL, "http://"), "https://")
		t.addr = strings.TrimRight(u, "/")
		t.pid = o.ServerPid
	} else {
		env := []string{"UNHIDRA_RATE_LIMITS=off"}
		if o.ProfileDir != "" {
			env = append(env,
				"UNHIDRA_BENCH_CPUPROFILE="+filepath.Join(o.ProfileDir, fmt.Sprintf("%s-run%d.cpu.pprof", t.name, run)),
				"UNHIDRA_BENCH_HEAPPROFILE="+filepath.Join(o.ProfileDir, fmt.Sprintf("%s-run%d.heap.pprof", t.name, run)))
		}
		var args []string
		if t.name == "unhidra" {
			// The core alone: no plugins unless asked for (arguments after
			// "--" come later and win, e.g. -- --plugins plugins.yaml).
			none := filepath.Join(dataDir, "no-plugins.yaml")
			if err := os.WriteFile(none, []byte("plugins: []\n"), 0o644); err != nil {
				return err
			}
			// The clients come from a few 127.0.0.x addresses, and connect
			// holds 19,500 sessions: the per-address cap is off and the
			// global cap just under the file limit.
			args = append([]string{"serve-unhidra", "--addr", "127.0.0.1:0", "--data", dataDir, "--plugins", none,
				"--max-conns-per-ip", "0", "--max-conns", "19800"}, o.ServerArgs...)
		} else {
			args = []string{"serve-reference", "--addr", "127.0.0.1:0"}
		}
		cmd, addr, err := startChild(args, env)
		if err != nil {
			return err
		}
		t.cmd, t.addr, t.pid = cmd, addr, cmd.Process.Pid
	}
	for i := 0; i < o.Workers; i++ {
		w, err := t.spawnWorker(fmt.Sprintf("127.0.0.%d", 10+i))
		if err != nil {
			return err
		}
		t.workers = append(t.workers, w)
	}
	if t.name == "unhidra" {
		return t.setup(ctx, o, run)
	}
	return nil
}

// spawnWorker starts a client worker process dialing from src.
func (t *target) spawnWorker(src string) (*workerProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "worker", "--src", src)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker for %s: %w", src, err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	return &workerProc{cmd: cmd, in: in, out: sc}, nil
}

// stopWorkers ends worker processes (a second call for the same ones does nothing).
func (t *target) stopWorkers(ws []*workerProc) {
	for _, w := range ws {
		if w.in == nil {
			continue
		}
		_, _ = w.call(command{Op: "exit"})
		_ = w.in.Close()
		w.in = nil
		_ = w.cmd.Wait()
	}
}

// statsOf asks each worker for its counters (workers that fail are left out).
func (t *target) statsOf(ws []*workerProc) []reply {
	var out []reply
	for _, w := range ws {
		if r, err := w.call(command{Op: "stats"}); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// alive samples the server process and reports whether it is still running.
func (t *target) alive() (procStat, bool) {
	if t.pid == 0 {
		return procStat{}, true
	}
	s, err := readProc(t.pid)
	return s, err == nil && s.State != "Z"
}

// apiAs is a REST client signed in as bench account i.
func (t *target) apiAs(i int) *client.API {
	return &client.API{Base: t.api.Base, Token: t.tokens[i]}
}

// setup registers and logs in the bench accounts through the REST API.
func (t *target) setup(ctx context.Context, o options, run int) error {
	base := "http://" + t.addr
	t.users = make([]client.User, o.Users)
	t.tokens = make([]string, o.Users)
	stamp := time.Now().UnixNano() % 1e9
	errs := make(chan error, o.Users)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := 0; i < o.Users; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			a := &client.API{Base: base}
			name := fmt.Sprintf("bench%d_%d_%d", stamp, run, i)
			u, err := a.Register(ctx, name, "bench-password", "")
			if err != nil {
				errs <- fmt.Errorf("register %s: %w", name, err)
				return
			}
			tok, err := a.Login(ctx, name, "bench-password")
			if err != nil {
				errs <- fmt.Errorf("login %s: %w", name, err)
				return
			}
			t.users[i], t.tokens[i] = u, tok.AccessToken
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	t.api = &client.API{Base: base, Token: t.tokens[0]}
	return nil
}

func (t *target) stop() {
	t.stopWorkers(t.workers)
	t.workers = nil
	if t.cmd != nil {
		_ = t.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = t.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = t.cmd.Process.Kill()
			<-done
		}
	}
}

// split divides n over k parts.
func split(n, k, i int) int {
	p := n / k
	if i < n%k {
		p++
	}
	return p
}

func sum(rs []reply, f func(reply) int64) int64 {
	var s int64
	for _, r := range rs {
		s += f(r)
	}
	return s
}

func firstErr(rs []reply) string {
	for _, r := range rs {
		if r.FirstError != "" {
			return r.FirstError
		}
		if r.ErrorText != "" {
			return r.ErrorText
		}
	}
	return ""
}

// metrics of one run of one target: name → value.
type metrics map[string]float64

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

// settledRSS asks the server to return freed memory to the OS, then samples.
func (t *target) settled() procStat {
	if t.cmd != nil {
		_ = t.cmd.Process.Signal(syscall.SIGUSR2)
		time.Sleep(1500 * time.Millisecond)
	}
	return t.server()
}

func (t *target) connect(o options, m metrics) error {
	base := t.settled()
	dial := func(n int, rate float64) ([]reply, error) {
		return t.all(func(i int) command {
			return command{Op: "dial", Addr: t.addr, Path: t.wsPath("idle"), Tokens: t.tokens, Role: "sub",
				N: split(n, len(t.workers), i), Rate: rate / float64(len(t.workers)), Conc: 32}
		})
	}
	r1, err := dial(o.HoldAt, o.ConnectRate)
	if err != nil {
		return err
	}
	logf("%s connect: %d sessions in %.1fs (%d failed) %s", t.name, sum(r1, func(r reply) int64 { return r.OK }),
		maxSeconds(r1), sum(r1, func(r reply) int64 { return r.Failed }), firstErr(r1))
	r2, err := dial(o.Sessions-o.HoldAt, 0)
	if err != nil {
		return err
	}
	ok2 := sum(r2, func(r reply) int64 { return r.OK })
	if s := maxSeconds(r2); s > 0 {
		m["handshakes_per_s"] = float64(ok2) / s
	}
	failed := sum(r1, func(r reply) int64 { return r.Failed }) + sum(r2, func(r reply) int64 { return r.Failed })
	logf("%s connect: +%d sessions at %.0f/s while holding %d; holding %s", t.name, ok2, m["handshakes_per_s"], o.HoldAt, o.Hold)
	time.Sleep(o.Hold)
	st, err := t.all(func(int) command { return command{Op: "stats"} })
	if err != nil {
		return err
	}
	held := sum(st, func(r reply) int64 { return r.Open })
	dropped := sum(st, func(r reply) int64 { return r.Dropped })
	srv := t.settled()
	if t.cmd != nil && o.ProfileDir != "" {
		_ = t.cmd.Process.Signal(syscall.SIGUSR1)
		time.Sleep(time.Second)
	}
	m["sessions_held"] = float64(held)
	m["connect_errors"] = float64(failed + dropped)
	if held > 0 && srv.RSS > 0 {
		m["rss_kb_per_session"] = float64(srv.RSS-base.RSS) / 1024 / float64(held)
		m["server_rss_mb_held"] = float64(srv.RSS) / (1 << 20)
	}
	logf("%s connect: held %d after %s, errors %d %s, server RSS %.0f MB (%.1f KB/session)", t.name, held, o.Hold,
		failed+dropped, firstErr(st), m["server_rss_mb_held"], m["rss_kb_per_session"])
	_, err = t.all(func(int) command { return command{Op: "closeall"} })
	time.Sleep(2 * time.Second)
	return err
}

func maxSeconds(rs []reply) float64 {
	var s float64
	for _, r := range rs {
		if r.Seconds > s {
			s = r.Seconds
		}
	}
	return s
}

func (t *target) churn(o options, m metrics) error {
	rs, err := t.all(func(int) command {
		return command{Op: "churn", Addr: t.addr, Path: t.wsPath("churn"), Tokens: t.tokens, Conc: o.ChurnConc, Seconds: o.Churn.Seconds()}
	})
	if err != nil {
		return err
	}
	ok := sum(rs, func(r reply) int64 { return r.OK })
	m["churn_per_s"] = float64(ok) / maxSeconds(rs)
	m["churn_errors"] = float64(sum(rs, func(r reply) int64 { return r.Failed }))
	logf("%s churn: %.0f open+close/s, %d errors %s", t.name, m["churn_per_s"], int64(m["churn_errors"]), firstErr(rs))
	time.Sleep(2 * time.Second)
	return nil
}

func (t *target) fanout(ctx context.Context, o options, f fanoutSpec, m metrics) error {
	room := "fan"
	if t.name == "unhidra" {
		if t.fanRoom == "" {
			ids := make([]string, 0, len(t.users))
			for _, u := range t.users[1:] {
				ids = append(ids, u.ID)
			}
			r, err := t.api.CreateRoom(ctx, "bench fanout", "public", ids...)
			if err != nil {
				return fmt.Errorf("create fanout room: %w", err)
			}
			t.fanRoom = r.ID
		}
		room = t.fanRoom
	}
	// Subscribers use every token but the first; the publisher (worker 0)
	// uses the first, so its user is a member too.
	subTokens := t.tokens
	if len(subTokens) > 1 {
		subTokens = subTokens[1:]
	}
	if _, err := t.all(func(i int) command {
		return command{Op: "dial", Addr: t.addr, Path: t.wsPath(room), Tokens: subTokens, Role: "sub", N: split(f.Members, len(t.workers), i), Conc: 32}
	}); err != nil {
		return err
	}
	var pubTok []string
	if len(t.tokens) > 0 {
		pubTok = t.tokens[:1]
	}
	if r, err := t.workers[0].call(command{Op: "dial", Addr: t.addr, Path: t.wsPath(room), Tokens: pubTok, Role: "pub", N: 1}); err != nil || r.OK != 1 {
		return fmt.Errorf("publisher: %v %s", err, r.FirstError)
	}
	time.Sleep(2 * time.Second) // presence announcements settle
	if _, err := t.all(func(int) command { return command{Op: "reset"} }); err != nil {
		return err
	}
	s0, c0 := t.server(), readProcs(t.workerPids())
	t0 := time.Now()
	pr, err := t.workers[0].call(command{Op: "publish", Room: room, Rate: f.Rate, Seconds: o.Duration.Seconds(), Size: o.Size})
	if err != nil {
		return err
	}
	pubSecs := time.Since(t0).Seconds()
	want := pr.Sent * int64(f.Members+1)
	// Wait until deliveries stop growing (at most 10 s): the tail belongs
	// to the measurement.
	var st []reply
	var last int64 = -1
	for i := 0; i < 40; i++ {
		time.Sleep(250 * time.Millisecond)
		st, err = t.all(func(int) command { return command{Op: "stats"} })
		if err != nil {
			return err
		}
		d := sum(st, func(r reply) int64 { return r.Deliveries })
		if d >= want || d == last {
			break
		}
		last = d
	}
	elapsed := time.Since(t0).Seconds()
	s1, c1 := t.server(), readProcs(t.workerPids())
	h, ah := mergeHists(st)
	d := sum(st, func(r reply) int64 { return r.Deliveries })
	k := "fanout_" + f.String() + "_"
	m[k+"offered_per_s"] = float64(want) / pubSecs
	m[k+"deliveries_per_s"] = float64(d) / elapsed
	m[k+"delivered_pct"] = 100 * float64(d) / float64(max(want, 1))
	if d > 0 && s1.CPUMicros > 0 {
		m[k+"server_cpu_us_per_delivery"] = float64(s1.CPUMicros-s0.CPUMicros) / float64(d)
	}
	m[k+"server_cpu_pct"] = 100 * float64(s1.CPUMicros-s0.CPUMicros) / 1e6 / elapsed
	m[k+"client_cpu_pct"] = 100 * float64(c1.CPUMicros-c0.CPUMicros) / 1e6 / elapsed
	m[k+"p50_ms"] = h.quantile(0.50) / 1000
	m[k+"p99_ms"] = h.quantile(0.99) / 1000
	m[k+"p999_ms"] = h.quantile(0.999) / 1000
	if ah.count() > 0 { // the reference sends no acks
		m[k+"ack_p50_ms"] = ah.quantile(0.50) / 1000
		m[k+"ack_p99_ms"] = ah.quantile(0.99) / 1000
	}
	m[k+"errors"] = float64(sum(st, func(r reply) int64 { return r.Errors + r.Dropped }))
	logf("%s fanout %s: %.0f deliveries/s (%.1f%% of %d), server %.2f µs/delivery (%.0f%% CPU), client %.0f%% CPU, p50 %.1f ms p99 %.1f ms p99.9 %.1f ms (ack p50 %.1f p99 %.1f ms), errors %d %s",
		t.name, f, m[k+"deliveries_per_s"], m[k+"delivered_pct"], want, m[k+"server_cpu_us_per_delivery"], m[k+"server_cpu_pct"],
		m[k+"client_cpu_pct"], m[k+"p50_ms"], m[k+"p99_ms"], m[k+"p999_ms"], m[k+"ack_p50_ms"], m[k+"ack_p99_ms"], int64(m[k+"errors"]), firstErr(st))
	_, err = t.all(func(int) command { return command{Op: "closeall"} })
	time.Sleep(2 * time.Second)
	return err
}

// sends measures durable sends: each publisher has its own room, keeps a
// window of sends in flight and counts acks (sent only after commit).
func (t *target) sends(ctx context.Context, o options, m metrics) error {
	if t.name != "unhidra" {
		return nil // the reference stores nothing
	}
	n := min(o.SendPubs, len(t.users))
	rooms := make([]string, n)
	for i := 0; i < n; i++ {
		a := &client.API{Base: t.api.Base, Token: t.tokens[i]}
		r, err := a.CreateRoom(ctx, fmt.Sprintf("bench sends %d", i), "private")
		if err != nil {
			return fmt.Errorf("create sends room: %w", err)
		}
		rooms[i] = r.ID
	}
	// Publisher k of worker w uses token index w + k*workers, matching rooms.
	if _, err := t.all(func(w int) command {
		var toks, rms []string
		for i := w; i < n; i += len(t.workers) {
			toks, rms = append(toks, t.tokens[i]), append(rms, rooms[i])
		}
		return command{Op: "dial", Addr: t.addr, Path: "/v1/ws", Tokens: toks, Rooms: rms, Role: "pub", N: len(toks), Window: o.SendWindow}
	}); err != nil {
		return err
	}
	time.Sleep(time.Second)
	if _, err := t.all(func(int) command { return command{Op: "reset"} }); err != nil {
		return err
	}
	s0 := t.server()
	t0 := time.Now()
	if _, err := t.all(func(w int) command {
		var rms []string
		for i := w; i < n; i += len(t.workers) {
			rms = append(rms, rooms[i])
		}
		return command{Op: "sends", Rooms: rms, Seconds: o.Duration.Seconds(), Size: o.Size}
	}); err != nil {
		return err
	}
	elapsed := time.Since(t0).Seconds()
	s1 := t.server()
	st, err := t.all(func(int) command { return command{Op: "stats"} })
	if err != nil {
		return err
	}
	acks := sum(st, func(r reply) int64 { return r.Acks })
	m["sends_per_s"] = float64(acks) / elapsed
	_, ah := mergeHists(st)
	m["sends_ack_p50_ms"] = ah.quantile(0.50) / 1000
	m["sends_ack_p99_ms"] = ah.quantile(0.99) / 1000
	if acks > 0 && s1.CPUMicros > 0 {
		m["sends_server_cpu_us_per_send"] = float64(s1.CPUMicros-s0.CPUMicros) / float64(acks)
	}
	m["sends_errors"] = float64(sum(st, func(r reply) int64 { return r.Errors + r.Dropped }))
	logf("%s sends: %.0f acked sends/s (%d publishers × window %d), server %.1f µs/send, ack p50 %.1f ms p99 %.1f ms, errors %d %s", t.name,
		m["sends_per_s"], n, o.SendWindow, m["sends_server_cpu_us_per_send"], m["sends_ack_p50_ms"], m["sends_ack_p99_ms"], int64(m["sends_errors"]), firstErr(st))
	_, err = t.all(func(int) command { return command{Op: "closeall"} })
	time.Sleep(time.Second)
	return err
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	env := runEnv{Start: time.Now().UTC(), LoadStart: loadavg(), Commit: gitCommit()}
	results := map[string][]metrics{}
	for run := 1; run <= o.Runs; run++ {
		for _, name := range o.Targets {
			m, err := runTarget(ctx, o, name, run)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", name, run, err)
			}
			results[name] = append(results[name], m)
		}
	}
	env.LoadEnd = loadavg()
	env.End = time.Now().UTC()
	table := report(o, env, results)
	fmt.Fprint(stdout, table)
	if o.Out != "" {
		if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(o.Out, []byte(table), 0o644)
	}
	return nil
}

func runTarget(ctx context.Context, o options, name string, run int) (metrics, error) {
	dir, err := os.MkdirTemp("", "unhidra-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t := &target{name: name}
	defer t.stop()
	logf("%s run %d: starting", name, run)
	if err := t.start(ctx, o, run, dir); err != nil {
		return nil, err
	}
	m := metrics{}
	if o.Scenarios["connect"] && o.Sessions > 0 {
		if err := t.connect(o, m); err != nil {
			return nil, err
		}
	}
	if o.Scenarios["churn"] {
		if err := t.churn(o, m); err != nil {
			return nil, err
		}
	}
	if o.Scenarios["fanout"] {
		for _, f := range o.Fanout {
			if err := t.fanout(ctx, o, f, m); err != nil {
				return nil, err
			}
		}
	}
	if o.Scenarios["sends"] {
		if err := t.sends(ctx, o, m); err != nil {
			return nil, err
		}
	}
	if o.Scenarios["soak"] {
		if err := t.soak(ctx, o, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type runEnv struct {
	Start, End         time.Time
	LoadStart, LoadEnd string
	Commit             string // of the working tree when the run started
}

func median(ms []metrics, k string) (float64, bool) {
	var v []float64
	for _, m := range ms {
		if x, ok := m[k]; ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if d, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(d) > 0 {
		c += "+dirty"
	}
	return c
}

// mergeHists adds up the workers' delivery and ack latency histograms.
func mergeHists(rs []reply) (deliv, ack hist) {
	for _, r := range rs {
		for j := 0; j+1 < len(r.Hist); j += 2 {
			deliv[r.Hist[j]] += r.Hist[j+1]
		}
		for j := 0; j+1 < len(r.AckHist); j += 2 {
			ack[r.AckHist[j]] += r.AckHist[j+1]
		}
	}
	return deliv, ack
}
