package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

type filterOnly struct{}

func (filterOnly) MessageWillBePosted(_ context.Context, m *Message) error {
	switch {
	case strings.Contains(m.Text, "bad"):
		return Reject("no %s words", "bad")
	case strings.Contains(m.Text, "shout"):
		m.Text = strings.ToUpper(m.Text)
	case strings.Contains(m.Text, "fail"):
		return errors.New("database down")
	}
	return nil
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

func TestMessageWillBePostedVerdicts(t *testing.T) {
	s := &server{impl: filterOnly{}}
	cases := []struct {
		text   string
		action pb.Action
		out    string
		err    bool
	}{
		{"fine", pb.Action_ACTION_ALLOW, "", false},
		{"shout it", pb.Action_ACTION_MODIFY, "SHOUT IT", false},
		{"bad word", pb.Action_ACTION_REJECT, "no bad words", false},
		{"fail now", 0, "", true},
	}
	for _, c := range cases {
		v, err := s.MessageWillBePosted(context.Background(), &pb.MessageWillBePostedRequest{Message: &pb.Message{Text: c.text}})
		if c.err {
			if err == nil || !strings.Contains(err.Error(), "database down") {
				t.Fatalf("%q: err %v, want the plugin's error", c.text, err)
			}
			continue
		}
		if err != nil || v.Action != c.action || (c.action == pb.Action_ACTION_MODIFY && v.Text != c.out) ||
			(c.action == pb.Action_ACTION_REJECT && v.Reason != c.out) {
			t.Fatalf("%q: verdict %+v err %v", c.text, v, err)
		}
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
		if err := (&server{impl: whoami{}}).ServeHTTP(st); err != nil {
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
