package pluginhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/pluginhost"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Plugin binaries are built once per test run, as real separate programs.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func bins(t testing.TB) (hello, testplugin string) {
	t.Helper()
	buildOnce.Do(func() {
		if _, err := exec.LookPath("go"); err != nil {
			buildErr = errors.New("the go tool is not on PATH")
			return
		}
		binDir, buildErr = os.MkdirTemp("", "unhidra-plugins-")
		if buildErr != nil {
			return
		}
		for name, pkg := range map[string]string{"hello": "../../sdk/examples/hello", "testplugin": "./testdata/testplugin",
			"unhidra": "../cmd/unhidra"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		if strings.Contains(buildErr.Error(), "not on PATH") {
			servertest.SkipOrFail(t, "plugin tests build plugin binaries: "+buildErr.Error())
		}
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "hello"), filepath.Join(binDir, "testplugin")
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range []string{binDir, framesDir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

// env is a server with a plugins.yaml the test rewrites, a superadmin and a
// member with a room and an open WebSocket session each.
type env struct {
	*servertest.Env
	path  string
	admin servertest.User
	bob   servertest.User
	room  string
	ac    *client.Conn // admin's session
	bc    *client.Conn // bob's session
}

func start(t *testing.T, yaml string) *env {
	t.Helper()
	return startOn(t, "", yaml)
}

// startOn is start on a given database (servertest.Backend DSN).
func startOn(t *testing.T, dsn, yaml string) *env {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "plugins.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := servertest.Start(t, servertest.Options{DSN: dsn, Config: func(c *server.Config) { c.Plugins = path }})
	ev := &env{Env: e, path: path}
	ev.admin = e.NewUser(t, "admin")
	ev.bob = e.NewUser(t, "bob")
	r, err := ev.admin.API.CreateRoom(context.Background(), "general", "public")
	if err != nil {
		t.Fatal(err)
	}
	ev.room = r.ID
	if err := ev.bob.API.JoinRoom(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	ev.ac = e.Dial(t, ev.admin)
	ev.bc = e.Dial(t, ev.bob)
	return ev
}

func (e *env) write(t *testing.T, yaml string) {
	t.Helper()
	if err := os.WriteFile(e.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reload asks the admin API to reload; it returns the API error, if any.
func (e *env) reload(t *testing.T) error {
	t.Helper()
	var res pluginhost.ReloadResult
	return e.admin.API.Do(context.Background(), "POST", "/v1/admin/plugins/reload", nil, &res)
}

func (e *env) status(t *testing.T, id string) pluginhost.Status {
	t.Helper()
	var ov pluginhost.Overview
	if err := e.admin.API.Do(context.Background(), "GET", "/v1/admin/plugins", nil, &ov); err != nil {
		t.Fatal(err)
	}
	for _, p := range ov.Plugins {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("plugin %s not in admin status %+v", id, ov)
	return pluginhost.Status{}
}

func hookStat(s pluginhost.Status, hook string) pluginhost.HookStatus {
	for _, h := range s.HookStats {
		if h.Hook == hook {
			return h
		}
	}
	return pluginhost.HookStatus{}
}

func send(c *client.Conn, room, text string) (protocol.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Send(ctx, room, text)
}

func code(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	if err != nil {
		return "transport: " + err.Error()
	}
	return ""
}

// alive fails the test if a session was closed.
func alive(t *testing.T, cs ...*client.Conn) {
	t.Helper()
	for _, c := range cs {
		select {
		case <-c.Done():
			t.Fatalf("a WebSocket session was dropped: %v (goodbye %+v)", c.Err(), c.Goodbye())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.Ping(ctx)
		cancel()
		if err != nil {
			t.Fatalf("session does not answer ping: %v", err)
		}
	}
}

// waitFor polls cond until it holds (the condition is behaviour, not time:
// the deadline only stops a broken test from hanging).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
