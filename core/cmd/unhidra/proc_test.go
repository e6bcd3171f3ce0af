package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/unhidra/unhidra/sdk/client"
)

// binDir holds the binary built once for this test run (see TestMain).
var binDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "unhidra-bin-")
	if err != nil {
		panic(err)
	}
	binDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

var buildOnce sync.Once
var buildErr error

// buildBinary compiles this command once per test run and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "unhidra")
	buildOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(gobin, "build", "-o", bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// proc is a server running as a separate OS process.
type proc struct {
	cmd  *exec.Cmd
	base string // http://host:port (https:// with TLS)
	done chan struct{}

	mu  sync.Mutex
	log []string // stderr lines so far
}

// procOptions tweak how startProcWith runs the server.
type procOptions struct {
	// NoFile, when set, is the server's open-file limit (soft and hard),
	// applied with the shell's ulimit before it execs the binary.
	NoFile int
}

var servingRE = regexp.MustCompile(`serving on (https?://\S+)`)

// startProc runs `unhidra serve` on a free port and waits for its
// "serving on" line.
func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	return startProcWith(t, bin, procOptions{}, args...)
}

// startProcWith is startProc with options. The server's stderr is kept
// (proc.logs) and shown with -v.
func startProcWith(t *testing.T, bin string, o procOptions, args ...string) *proc {
	t.Helper()
	argv := append([]string{bin, "serve", "--addr", "127.0.0.1:0", "--log-level", "warn", "--rate-limits", "off"}, args...)
	if o.NoFile > 0 {
		// exec keeps the pid, so proc.cmd.Process is the server itself.
		argv = append([]string{"/bin/sh", "-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(o.NoFile)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "UNHIDRA_DATABASE_URL=", "UNHIDRA_ADDR=", "UNHIDRA_DATA=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() {
		defer pipes.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		defer pipes.Done()
		w := testLog(t)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(w, sc.Text())
			p.mu.Lock()
			p.log = append(p.log, sc.Text())
			p.mu.Unlock()
		}
	}()
	// Wait reads nothing after the process ends until the pipes are drained.
	go func() { pipes.Wait(); _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	select {
	case p.base = <-found:
	case <-p.done:
		t.Fatalf("server exited before serving: %v\n%s", cmd.ProcessState, strings.Join(p.logs(), "\n"))
	case <-time.After(60 * time.Second):
		t.Fatal("server did not print its address within 60s")
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// logs returns the server's stderr lines so far.
func (p *proc) logs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// alive fails the test when the server process has exited.
func (p *proc) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("the server exited (%v); its log:\n%s", p.cmd.ProcessState, strings.Join(p.logs(), "\n"))
	default:
	}
}

// rss is the server's resident set size in bytes (/proc/<pid>/status VmRSS).
func (p *proc) rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("read server status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}

// metric reads the server's /metrics: the sample named series (with its
// labels, e.g. `unhidra_errors_total{code="internal"}`), or the sum over
// every label set of a bare name. Absent series count as 0.
func (p *proc) metric(t *testing.T, series string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	var sum float64
	for _, l := range strings.Split(string(b), "\n") {
		i := strings.LastIndexByte(l, ' ')
		if i < 0 || strings.HasPrefix(l, "#") {
			continue
		}
		if key := l[:i]; key != series && !strings.HasPrefix(key, series+"{") {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		sum += v
	}
	return sum
}

// account registers and logs in name on the server; the returned API
// carries its access token.
func (p *proc) account(t *testing.T, ctx context.Context, name string) *client.API {
	t.Helper()
	api := &client.API{Base: p.base}
	if _, err := api.Register(ctx, name, "password-"+name, ""); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	if _, err := api.Login(ctx, name, "password-"+name); err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return api
}

func testLog(t *testing.T) io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}
