package pluginhost_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/pluginhost"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/plugin"
	"github.com/unhidra/unhidra/sdk/protocol"
)

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// Write beside and rename: a running executable cannot be overwritten.
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// Upgrading the binary in place swaps the process on reload (start new,
// switch, stop old) while sessions stay connected; the checksum in
// plugins.yaml is enforced.
func TestBinaryUpgradeSwap(t *testing.T) {
	hello, _ := bins(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "hello")
	copyFile(t, hello, bin)
	e := start(t, helloYAML(bin, ""))
	old := e.status(t, "hello")
	copyFile(t, hello, bin)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(bin, future, future); err != nil {
		t.Fatal(err)
	}
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	st := e.status(t, "hello")
	if st.PID == old.PID || st.State != "running" || st.Restarts != 1 || st.RecentCrashes != 0 {
		t.Fatalf("after upgrade: %+v (was pid %d)", st, old.PID)
	}
	if ack, err := send(e.bc, e.room, "/hello"); err != nil || *ack.Text != "Hello, world!" {
		t.Fatalf("/hello after upgrade: %v", err)
	}
	// A wrong sha256 keeps the binary from running at all.
	e.write(t, helloYAML(bin, `    sha256: "`+strings.Repeat("00", 32)+`"`+"\n    restart: {max_crashes: 1, window: 1m}\n"))
	if err := e.reload(t); err != nil {
		t.Fatal(err)
	}
	// The swap failed, so the verified old process keeps serving.
	if ack, err := send(e.bc, e.room, "/hello"); err != nil || *ack.Text != "Hello, world!" {
		t.Fatalf("/hello after refused upgrade: %v", err)
	}
	alive(t, e.ac, e.bc)
}

// A first-party plugin runs as `unhidra plugin <name>`, a separate process
// of the same executable.
func TestBuiltinPlugin(t *testing.T) {
	bins(t)
	exe := filepath.Join(binDir, "unhidra")
	dir := t.TempDir()
	path := filepath.Join(dir, "plugins.yaml")
	yaml := "plugins:\n  - id: welcome\n    builtin: welcome\n    grants: [messages.post, users.read, commands]\n    config: {message: \"Hi {user}, welcome aboard\"}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.Plugins, c.PluginExecutable, c.Builtins = path, exe, []string{"welcome"}
	}})
	admin := e.NewUser(t, "admin")
	carol := e.NewUser(t, "carol")
	r, err := admin.API.CreateRoom(context.Background(), "lobby", "public")
	if err != nil {
		t.Fatal(err)
	}
	ac := e.Dial(t, admin)
	if err := carol.API.JoinRoom(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	m := servertest.NextWhere(t, ac, 10*time.Second, "the welcome post", func(f protocol.Frame) bool {
		return f.Type == protocol.TypeMessage && f.Text != nil
	})
	if *m.Text != "Hi carol, welcome aboard" {
		t.Fatalf("welcome post %q", *m.Text)
	}
	ack, err := send(ac, r.ID, "/welcome")
	if err != nil || *ack.Text != "Hi admin, welcome aboard" {
		t.Fatalf("/welcome: %v", err)
	}
	// An unknown builtin is a validation error naming the line.
	if err := os.WriteFile(path, []byte("plugins:\n  - id: x\n    builtin: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Server.Plugins().Reload(context.Background()); err == nil || !strings.Contains(err.Error(), `plugins.yaml:2: plugin "x": unknown builtin "nope"`) {
		t.Fatalf("unknown builtin: %v", err)
	}
}

// Debugging: a plugin started by hand in debug mode prints a reattach line;
// a server given it through UNHIDRA_PLUGIN_REATTACH uses that process.
func TestReattach(t *testing.T) {
	hello, _ := bins(t)
	cmd := exec.Command(hello)
	cmd.Env = append(os.Environ(), plugin.DebugEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, plugin.ReattachPrefix) {
		t.Fatalf("debug mode printed %q (%v)", line, err)
	}
	reattach := fmt.Sprintf(`{"hello": %s}`, strings.TrimSpace(strings.TrimPrefix(line, plugin.ReattachPrefix)))
	dir := t.TempDir()
	path := filepath.Join(dir, "plugins.yaml")
	// The command is never run: the host attaches to the process above.
	if err := os.WriteFile(path, []byte(helloYAML("/nonexistent/hello", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	e := servertest.Start(t, servertest.Options{Config: func(c *server.Config) { c.Plugins, c.PluginReattach = path, reattach }})
	u := e.NewUser(t, "admin")
	r, err := u.API.CreateRoom(context.Background(), "dev", "public")
	if err != nil {
		t.Fatal(err)
	}
	c := e.Dial(t, u)
	if ack, err := send(c, r.ID, "/hello debugger"); err != nil || *ack.Text != "Hello, debugger!" {
		t.Fatalf("/hello through the reattached plugin: %v", err)
	}
	if st := e.Server.Plugins().Status().Plugins[0]; st.PID != cmd.Process.Pid {
		t.Fatalf("attached to pid %d, want %d", st.PID, cmd.Process.Pid)
	}
}

// Health checks: a frozen process (SIGSTOP: alive but silent) is killed and
// restarted.
func TestFrozenPluginRestarted(t *testing.T) {
	hello, _ := bins(t)
	path := filepath.Join(t.TempDir(), "plugins.yaml")
	if err := os.WriteFile(path, []byte(helloYAML(hello, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	h := pluginhost.New(pluginhost.Options{Path: path, HealthInterval: 500 * time.Millisecond})
	if err := h.Start(context.Background(), pluginhost.Services{}); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	pid := h.Status().Plugins[0].PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "a new process", func() bool {
		st := h.Status().Plugins[0]
		return st.State == "running" && st.PID != pid && st.PID != 0
	})
	d := chat.Draft{Text: "darn"}
	if err := h.MessageWillBePosted(context.Background(), &d); err == nil {
		t.Fatal("restarted plugin does not filter")
	}
}

// A plugin never outlives its server: not after kill -9 of the server, not
// after a start that failed after plugins were up.
func TestPluginDiesWithServer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal is Linux only")
	}
	bins(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plugins.yaml"), []byte("plugins:\n  - id: welcome\n    builtin: welcome\n    grants: [commands]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(filepath.Join(binDir, "unhidra"), "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"))
	srv.Dir = dir
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.Contains(line, "serving on") {
		t.Fatalf("server said %q (%v)", line, err)
	}
	plugin := 0
	t.Cleanup(func() { // only when the test failed: leave no orphan behind
		if plugin != 0 && running(plugin) {
			_ = syscall.Kill(plugin, syscall.SIGKILL)
		}
	})
	waitFor(t, "the plugin process", func() bool {
		plugin = childOf(srv.Process.Pid)
		return plugin != 0
	})
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	waitFor(t, "the plugin to die with its server", func() bool { return !running(plugin) })
}

// childOf returns a child process of pid, or 0.
func childOf(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, f := range strings.Fields(string(b)) {
			var c int
			if _, err := fmt.Sscan(f, &c); err == nil {
				return c
			}
		}
	}
	return 0
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state …
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
