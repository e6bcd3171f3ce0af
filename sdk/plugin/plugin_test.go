package plugin

import (
	"context"
	"errors"
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
