// Command testplugin is the misbehaving and probing plugins the host's tests
// run as real processes. The first argument picks the behaviour.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "exit": // dies before speaking
		fmt.Fprintln(os.Stderr, "testplugin: exiting at start on purpose")
		os.Exit(3)
	case "handshake": // not the go-plugin handshake at all
		fmt.Println("HELLO I AM NOT A PLUGIN")
		time.Sleep(time.Minute)
	case "garbage":
		goplugin.Serve(&goplugin.ServeConfig{HandshakeConfig: plugin.Handshake,
			Plugins:    goplugin.PluginSet{plugin.PluginName: &rawPlugin{}},
			GRPCServer: goplugin.DefaultGRPCServer})
	case "sleepy":
		plugin.Serve(&sleepy{})
	case "probe":
		plugin.Serve(&probe{})
	default:
		fmt.Fprintf(os.Stderr, "testplugin: unknown mode %q\n", mode)
		os.Exit(2)
	}
}

// rawPlugin answers with values no SDK would produce.
type rawPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (rawPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, garbage{})
	return nil
}
func (rawPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plugin side only")
}

type garbage struct{ pb.UnimplementedPluginServer }

func (garbage) Handshake(context.Context, *pb.HandshakeRequest) (*pb.HandshakeResponse, error) {
	return &pb.HandshakeResponse{ContractVersion: 1, Hooks: []pb.Hook{pb.Hook_HOOK_MESSAGE_WILL_BE_POSTED, pb.Hook(999)}}, nil
}
func (garbage) OnActivate(context.Context, *pb.ActivateRequest) (*pb.Empty, error) {
	return &pb.Empty{}, nil
}
func (garbage) MessageWillBePosted(_ context.Context, r *pb.MessageWillBePostedRequest) (*pb.MessageVerdict, error) {
	if strings.Contains(r.Message.Text, "modify") {
		return &pb.MessageVerdict{Action: pb.Action_ACTION_MODIFY, Text: "\xff\xfe not utf-8"}, nil
	}
	return &pb.MessageVerdict{Action: pb.Action(42), Reason: "???"}, nil
}

// sleepy sleeps in MessageWillBePosted when the text contains "sleep".
type sleepy struct{}

func (sleepy) MessageWillBePosted(ctx context.Context, req *plugin.MessageWillBePostedRequest) (*plugin.MessageVerdict, error) {
	if strings.Contains(req.Message.GetText(), "sleep") {
		time.Sleep(5 * time.Second) // hung: ignores its context
	}
	return plugin.Modify(req.Message.GetText() + " [seen]"), nil
}

// probe exercises the host API through commands (/kv, /post, /cfg) and
// records every notification hook it receives (/events lists them).
type probe struct {
	host   *plugin.Host
	mu     sync.Mutex
	events []string
}

func (p *probe) record(format string, args ...any) error {
	p.mu.Lock()
	p.events = append(p.events, fmt.Sprintf(format, args...))
	p.mu.Unlock()
	return nil
}

func (p *probe) MessageHasBeenPosted(_ context.Context, ev *plugin.MessageEvent) error {
	return p.record("posted:%s", ev.Message.GetText())
}
func (p *probe) MessageWillBeUpdated(_ context.Context, req *plugin.MessageWillBeUpdatedRequest) (*plugin.MessageVerdict, error) {
	if req.NewText == "forbidden edit" {
		return nil, plugin.Reject("no such edits")
	}
	return plugin.Modify(req.NewText + " (checked)"), nil
}
func (p *probe) MessageHasBeenUpdated(_ context.Context, ev *plugin.MessageEvent) error {
	return p.record("updated:%s", ev.Message.GetText())
}
func (p *probe) MessageHasBeenDeleted(context.Context, *plugin.MessageEvent) error {
	return p.record("deleted")
}
func (p *probe) UserWillLogIn(_ context.Context, u *plugin.UserEvent) (*plugin.MessageVerdict, error) {
	if u.Username == "mallory" {
		return nil, plugin.Reject("mallory may not log in")
	}
	return plugin.Allow(), nil
}
func (p *probe) UserHasLoggedIn(_ context.Context, u *plugin.UserEvent) error {
	return p.record("login:%s", u.Username)
}
func (p *probe) UserHasJoinedRoom(context.Context, *plugin.RoomEvent) error {
	return p.record("joined")
}
func (p *probe) UserHasLeftRoom(context.Context, *plugin.RoomEvent) error { return p.record("left") }
func (p *probe) OnWebSocketConnect(context.Context, *plugin.ConnectionEvent) error {
	return p.record("connect")
}
func (p *probe) OnWebSocketDisconnect(context.Context, *plugin.ConnectionEvent) error {
	return p.record("disconnect")
}

func (p *probe) OnActivate(ctx context.Context, h *plugin.Host) error {
	p.host = h
	for _, c := range []string{"kv", "post", "cfg", "events", "env"} {
		if err := h.RegisterCommand(ctx, &plugin.Command{Trigger: c}); err != nil {
			return err
		}
	}
	return h.LogLevel(ctx, 0, "probe activated")
}

func (p *probe) OnConfigurationChange(context.Context, *plugin.ConfigurationChangeRequest) error {
	return nil
}

func (p *probe) ExecuteCommand(ctx context.Context, c *plugin.CommandRequest) (*plugin.CommandResponse, error) {
	switch c.Trigger {
	case "env":
		return &plugin.CommandResponse{Text: fmt.Sprintf("%s=%q", c.Args, os.Getenv(c.Args))}, nil
	case "events":
		p.mu.Lock()
		defer p.mu.Unlock()
		return &plugin.CommandResponse{Text: strings.Join(p.events, " ")}, nil
	case "cfg":
		var cfg map[string]any
		if err := p.host.Config(&cfg); err != nil {
			return nil, err
		}
		return &plugin.CommandResponse{Text: fmt.Sprint(cfg["greeting"])}, nil
	case "post":
		_, err := p.host.PostMessage(ctx, &plugin.PostMessageRequest{Room: c.Room, Text: "posted by probe: " + c.Args})
		if err != nil {
			return &plugin.CommandResponse{Text: "post failed: " + err.Error()}, nil
		}
		return &plugin.CommandResponse{Text: "posted"}, nil
	case "kv":
		kv := p.host.KV()
		var out []string
		step := func(name string, err error) {
			if err != nil {
				out = append(out, name+"="+err.Error())
			}
		}
		step("set", kv.Set(ctx, "a/1", []byte("one"), 0))
		step("set2", kv.Set(ctx, "a/2", []byte("two"), 0))
		step("set3", kv.Set(ctx, "b/1", []byte("x"), 0))
		v, found, err := kv.Get(ctx, "a/1")
		step("get", err)
		out = append(out, fmt.Sprintf("get=%s/%v", v, found))
		ok, err := kv.CompareAndSet(ctx, "a/1", []byte("wrong"), []byte("uno"), 0)
		step("cas1", err)
		out = append(out, fmt.Sprintf("cas-wrong=%v", ok))
		ok, err = kv.CompareAndSet(ctx, "a/1", []byte("one"), []byte("uno"), 0)
		step("cas2", err)
		out = append(out, fmt.Sprintf("cas-right=%v", ok))
		ok, err = kv.CompareAndSet(ctx, "new", nil, []byte("n"), 0)
		step("cas3", err)
		out = append(out, fmt.Sprintf("cas-absent=%v", ok))
		ok, err = kv.CompareAndSet(ctx, "new", nil, []byte("n"), 0)
		step("cas4", err)
		out = append(out, fmt.Sprintf("cas-absent-again=%v", ok))
		es, err := kv.List(ctx, "a/", "", 10)
		step("list", err)
		keys := []string{}
		for _, e := range es {
			keys = append(keys, e.Key+":"+string(e.Value))
		}
		out = append(out, "list="+strings.Join(keys, ","))
		step("ttl", kv.Set(ctx, "tmp", []byte("t"), time.Millisecond))
		time.Sleep(20 * time.Millisecond)
		_, found, err = kv.Get(ctx, "tmp")
		step("get-tmp", err)
		out = append(out, fmt.Sprintf("expired-found=%v", found))
		step("del", kv.Delete(ctx, "a/2"))
		_, found, _ = kv.Get(ctx, "a/2")
		out = append(out, fmt.Sprintf("deleted-found=%v", found))
		return &plugin.CommandResponse{Text: strings.Join(out, " ")}, nil
	}
	return nil, fmt.Errorf("unknown command %s", c.Trigger)
}

// ServeHTTP streams three chunks, flushing between them, and echoes the body.
func (p *probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Probe", "yes")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "path=%s query=%s\n", r.URL.Path, r.URL.RawQuery)
	w.(http.Flusher).Flush()
	body := make([]byte, 1<<20)
	n := 0
	for {
		k, err := r.Body.Read(body[n:])
		n += k
		if err != nil {
			break
		}
	}
	fmt.Fprintf(w, "body=%d\n", n)
	w.(http.Flusher).Flush()
	fmt.Fprintln(w, "done")
}
