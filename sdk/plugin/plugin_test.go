package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

type filterOnly struct{}

func (filterOnly) MessageWillBePosted(_ context.Context, req *MessageWillBePostedRequest) (*MessageVerdict, error) {
	text := req.GetMessage().GetText()
	switch {
	case strings.Contains(text, "bad"):
		return nil, Reject("no %s words", "bad")
	case strings.Contains(text, "shout"):
		return Modify(strings.ToUpper(text)), nil
	case strings.Contains(text, "fail"):
		return nil, errors.New("database down")
	case strings.Contains(text, "nil"):
		return nil, nil
	}
	return Allow(), nil
}

func TestHooksReportedAreExactlyThoseImplemented(t *testing.T) {
	hs := hooksOf(filterOnly{})
	if len(hs) != 1 || hs[0] != pb.Hook_HOOK_MESSAGE_WILL_BE_POSTED {
		t.Fatalf("hooks = %v", hs)
	}
	if hs := hooksOf(struct{}{}); len(hs) != 0 {
		t.Fatalf("empty plugin reports %v", hs)
	}
}

func spec(t *testing.T, h pb.Hook) pb.HookSpec {
	t.Helper()
	s, ok := pb.HookSpecOf(h)
	if !ok {
		t.Fatalf("no spec for %v", h)
	}
	return s
}

func TestMessageWillBePostedVerdicts(t *testing.T) {
	s := &server{impl: filterOnly{}}
	cases := []struct {
		text   string
		action pb.Action
		out    string
		err    bool
	}{
		{"fine", pb.Action_ACTION_ALLOW, "", false},
		{"nil verdict", pb.Action_ACTION_ALLOW, "", false},
		{"shout it", pb.Action_ACTION_MODIFY, "SHOUT IT", false},
		{"bad word", pb.Action_ACTION_REJECT, "no bad words", false},
		{"fail now", 0, "", true},
	}
	sp := spec(t, pb.Hook_HOOK_MESSAGE_WILL_BE_POSTED)
	for _, c := range cases {
		resp, err := s.dispatch(context.Background(), sp, &pb.MessageWillBePostedRequest{Message: &pb.Message{Text: c.text}})
		if c.err {
			if err == nil || !strings.Contains(err.Error(), "database down") || status.Code(err) != codes.Unknown {
				t.Fatalf("%q: err %v, want the plugin's error", c.text, err)
			}
			continue
		}
		v, _ := resp.(*pb.MessageVerdict)
		if err != nil || v == nil || v.Action != c.action || (c.action == pb.Action_ACTION_MODIFY && v.Text != c.out) ||
			(c.action == pb.Action_ACTION_REJECT && v.Reason != c.out) {
			t.Fatalf("%q: verdict %+v err %v", c.text, v, err)
		}
	}
}

// A hook the plugin does not implement answers Unimplemented, except the
// optional lifecycle hooks, which answer empty.
func TestUnimplementedHooks(t *testing.T) {
	s := &server{impl: filterOnly{}}
	_, err := s.dispatch(context.Background(), spec(t, pb.Hook_HOOK_EXECUTE_COMMAND), &pb.CommandRequest{Trigger: "x"})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("ExecuteCommand on a filter: %v, want Unimplemented", err)
	}
	resp, err := s.dispatch(context.Background(), spec(t, pb.Hook_HOOK_ON_DEACTIVATE), &pb.Empty{})
	if err != nil || resp == nil {
		t.Fatalf("OnDeactivate without the hook: %v %v", resp, err)
	}
}

type lifecycle struct {
	cfg  string
	tick int64
}

func (l *lifecycle) OnConfigurationChange(_ context.Context, req *ConfigurationChangeRequest) error {
	l.cfg = string(req.ConfigJson)
	return nil
}
func (l *lifecycle) OnTick(_ context.Context, req *TickRequest) error {
	l.tick = req.Now
	return Reject("a rejection outside a verdict hook is an error")
}

// Notification and lifecycle hooks reach the plugin with their request;
// the host's copy of the config follows a configuration change.
func TestDispatchCarriesRequests(t *testing.T) {
	l := &lifecycle{}
	s := &server{impl: l, host: &Host{config: Config(`{"a":1}`)}}
	if _, err := s.dispatch(context.Background(), spec(t, pb.Hook_HOOK_ON_CONFIGURATION_CHANGE),
		&pb.ConfigurationChangeRequest{ConfigJson: []byte(`{"a":2}`)}); err != nil {
		t.Fatal(err)
	}
	var cfg struct{ A int }
	if err := s.host.Config(&cfg); err != nil || cfg.A != 2 || l.cfg != `{"a":2}` {
		t.Fatalf("config: host %+v (%v), plugin %q", cfg, err, l.cfg)
	}
	_, err := s.dispatch(context.Background(), spec(t, pb.Hook_HOOK_ON_TICK), &pb.TickRequest{Now: 42})
	if l.tick != 42 || status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "outside a verdict hook") {
		t.Fatalf("tick %d err %v", l.tick, err)
	}
}

func TestConfigDecodeIsStrict(t *testing.T) {
	var cfg struct{ Word string }
	if err := Config(`{"word":"darn"}`).Decode(&cfg); err != nil || cfg.Word != "darn" {
		t.Fatalf("decode: %v %+v", err, cfg)
	}
	if err := Config(`{"wrod":"darn"}`).Decode(&cfg); err == nil || !strings.Contains(err.Error(), "wrod") {
		t.Fatalf("typo accepted: %v", err)
	}
	if err := Config(nil).Decode(&cfg); err != nil {
		t.Fatalf("empty config: %v", err)
	}
}

// httpStream is the plugin side of one ServeHTTP exchange.
type httpStream struct {
	pb.Plugin_ServeHTTPServer
	in  []*pb.HTTPRequestPart
	out []*pb.HTTPResponsePart
}

func (s *httpStream) Context() context.Context { return context.Background() }

func (s *httpStream) Recv() (*pb.HTTPRequestPart, error) {
	if len(s.in) == 0 {
		return nil, io.EOF
	}
	p := s.in[0]
	s.in = s.in[1:]
	return p, nil
}

func (s *httpStream) Send(p *pb.HTTPResponsePart) error { s.out = append(s.out, p); return nil }

type whoami struct{}

func (whoami) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c, ok := CallerOf(r); ok {
		fmt.Fprintf(w, "%s/%s from %s", c.UserID, c.SessionID, r.RemoteAddr)
		return
	}
	fmt.Fprintf(w, "anonymous from %s", r.RemoteAddr)
}

// CallerOf gives a handler the verified caller the core put in the head.
func TestCallerOf(t *testing.T) {
	for _, tc := range []struct {
		head *pb.HTTPRequestHead
		want string
	}{
		{&pb.HTTPRequestHead{Method: "GET", Path: "/", UserId: "u1", SessionId: "s1", RemoteAddr: "203.0.113.7"}, "u1/s1 from 203.0.113.7"},
		{&pb.HTTPRequestHead{Method: "GET", Path: "/", RemoteAddr: "203.0.113.7"}, "anonymous from 203.0.113.7"},
	} {
		st := &httpStream{in: []*pb.HTTPRequestPart{{Head: tc.head}}}
		if err := (&server{impl: whoami{}}).serveHTTP(st); err != nil {
			t.Fatal(err)
		}
		var body []byte
		for _, p := range st.out {
			body = append(body, p.Body...)
		}
		if string(body) != tc.want {
			t.Fatalf("handler saw %q, want %q", body, tc.want)
		}
	}
}
