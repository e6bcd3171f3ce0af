//go:build !wasip1

package unhidra

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

type testModule struct{}

func (testModule) Commands() []Command { return []Command{{Trigger: "t"}} }

func (testModule) MessageWillBePosted(req *MessageWillBePostedRequest) (*MessageVerdict, error) {
	switch req.Message.Text {
	case "bad":
		return nil, Reject("no %s", "bad")
	case "fail":
		return nil, errors.New("database down")
	case "panic":
		panic("boom")
	case "nil":
		return nil, nil
	}
	return Modify(strings.ToUpper(req.Message.Text)), nil
}

func (testModule) UserWillLogIn(req *UserEvent) (*MessageVerdict, error) {
	if req.Username == "mallory" {
		return nil, Reject("not %s", req.Username)
	}
	return nil, nil
}

func (testModule) ExecuteCommand(req *CommandRequest) (*CommandResponse, error) {
	return &CommandResponse{Text: req.Args, Visibility: Visibility_VISIBILITY_IN_ROOM}, nil
}

func (testModule) OnDeactivate() error { return errors.New("bye") }

func init() { Register(testModule{}) }

// call runs hook on the registered module with req as the host encodes it
// and decodes the answer as the host does.
func callHook(t *testing.T, hook string, req, resp proto.Message) string {
	t.Helper()
	in, err := hostJSON.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var env CallResult
	if err := json.Unmarshal(Call(hook, in), &env); err != nil {
		t.Fatalf("%s: envelope: %v", hook, err)
	}
	if env.Error != "" {
		return env.Error
	}
	if len(env.Result) > 0 {
		if err := hostUnmarshal(env.Result, resp); err != nil {
			t.Fatalf("%s: host cannot read %s: %v", hook, env.Result, err)
		}
	}
	return ""
}

func TestDescribeListsImplementedHooksAndCommands(t *testing.T) {
	d := Describe()
	want := []string{HookOnDeactivate, HookMessageWillBePosted, HookUserWillLogIn, HookExecuteCommand}
	if d.ABI != ABIVersion || !slices.Equal(d.Hooks, want) || len(d.Commands) != 1 {
		t.Fatalf("describe = %+v, want hooks %v", d, want)
	}
}

func TestHooksAnswerInProtojson(t *testing.T) {
	for _, c := range []struct {
		text, errText string
		want          *pb.MessageVerdict
	}{
		{"hi", "", &pb.MessageVerdict{Action: pb.Action_ACTION_MODIFY, Text: "HI"}},
		{"nil", "", &pb.MessageVerdict{}},
		{"bad", "", &pb.MessageVerdict{Action: pb.Action_ACTION_REJECT, Reason: "no bad"}},
		{"fail", "database down", nil},
		{"panic", "plugin panicked in MessageWillBePosted: boom", nil},
	} {
		var v pb.MessageVerdict
		errText := callHook(t, HookMessageWillBePosted, &pb.MessageWillBePostedRequest{Message: &pb.Message{Text: c.text}}, &v)
		if errText != c.errText || (c.want != nil && !proto.Equal(&v, c.want)) {
			t.Errorf("%q: verdict %v error %q", c.text, &v, errText)
		}
	}
	var v pb.MessageVerdict
	if e := callHook(t, HookUserWillLogIn, &pb.UserEvent{Username: "mallory"}, &v); e != "" || v.Action != pb.Action_ACTION_REJECT || v.Reason != "not mallory" {
		t.Errorf("login: %v %q", &v, e)
	}
	var r pb.CommandResponse
	if e := callHook(t, HookExecuteCommand, &pb.CommandRequest{Trigger: "t", Args: "a b"}, &r); e != "" || r.Text != "a b" || r.Visibility != pb.Visibility_VISIBILITY_IN_ROOM {
		t.Errorf("command: %v %q", &r, e)
	}
	if e := callHook(t, HookOnDeactivate, &pb.Empty{}, &pb.Empty{}); e != "bye" {
		t.Errorf("deactivate error %q", e)
	}
	if e := callHook(t, HookOnTick, &pb.TickRequest{Now: 1}, &pb.Empty{}); !strings.Contains(e, "not implemented") {
		t.Errorf("unimplemented hook: %q", e)
	}
	if e := callHook(t, HookUserWillLogIn, &pb.UserEvent{}, &v); e != "" {
		t.Errorf("bad input: %q", e)
	}
	var env CallResult
	_ = json.Unmarshal(Call(HookUserWillLogIn, []byte(`{"username":`)), &env)
	if !strings.Contains(env.Error, "decode UserWillLogIn input") {
		t.Errorf("malformed input answered %+v", env)
	}
}
