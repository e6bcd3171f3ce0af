package pluginhost_test

// Plugin frames (client ↔ plugin) and plugin HTTP with a verified identity,
// through a real server, a real process plugin (testdata/framesplugin) and
// a real WASM module (wasmhost/testdata/frames) that answer op for op alike.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/unhidra/unhidra/core/pluginhost/wasmhost"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// The frames plugin and module are built once per test run.
var (
	framesOnce sync.Once
	framesDir  string
	framesErr  error
)

// framesPrograms returns the process plugin's executable and the module's
// .wasm file.
func framesPrograms(t *testing.T) (bin, wasm string) {
	t.Helper()
	framesOnce.Do(func() {
		if _, err := exec.LookPath("go"); err != nil {
			framesErr = errors.New("the go tool is not on PATH")
			return
		}
		if framesDir, framesErr = os.MkdirTemp("", "unhidra-frames-"); framesErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(framesDir, "framesplugin"), "./testdata/framesplugin").CombinedOutput()
		if err != nil {
			framesErr = fmt.Errorf("go build framesplugin: %v\n%s", err, out)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		framesErr = wasmhost.Build(ctx, "wasmhost/testdata/frames", filepath.Join(framesDir, "frames.wasm"))
	})
	if framesErr != nil {
		if strings.Contains(framesErr.Error(), "not on PATH") {
			servertest.SkipOrFail(t, "plugin frame tests build a plugin and a module: "+framesErr.Error())
		}
		t.Fatal(framesErr)
	}
	return filepath.Join(framesDir, "framesplugin"), filepath.Join(framesDir, "frames.wasm")
}

// framesYAML enables, for each runtime, the plugin with events.publish
// ("frames", "wframes"), without it ("…-mute"), with a short deadline
// ("…-slow"), and a process plugin without OnClientFrame.
func framesYAML(bin, wasm string) string {
	const long = "    limits: {timeouts: {OnClientFrame: 20s}}\n"
	const short = "    limits: {timeouts: {OnClientFrame: 300ms}}\n"
	return fmt.Sprintf(`plugins:
  - id: frames
    command: [%[1]q]
    grants: [events.publish]
%[3]s  - id: frames-mute
    command: [%[1]q]
%[3]s  - id: frames-slow
    command: [%[1]q]
%[4]s  - id: frames-nohook
    command: [%[1]q, "-no-frames"]
  - id: wframes
    kind: wasm
    wasm: %[2]s
    grants: [events.publish]
%[3]s  - id: wframes-mute
    kind: wasm
    wasm: %[2]s
%[3]s  - id: wframes-slow
    kind: wasm
    wasm: %[2]s
%[4]s`, bin, wasm, long, short)
}

// frameCall sends a plugin frame with ref and returns the reply frame.
func frameCall(c *client.Conn, f protocol.ClientFrame) (protocol.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.Type = protocol.TypePlugin
	return c.Call(ctx, f)
}

func pluginCall(c *client.Conn, plugin, op string, o client.PluginOptions) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Plugin(ctx, plugin, op, o)
}

// session is one WebSocket session and the plugin events it received.
type session struct {
	name string
	c    *client.Conn
	// cb receives plugin events when the session was dialed with
	// OnPluginEvent (else they arrive on Events).
	cb chan client.PluginEvent
}

// received returns the plugin events that reached s before a ping round
// trip: the server queues a session's frames in order, so everything
// published to it before the ping has arrived when the pong does.
func (s *session) received(t *testing.T) []client.PluginEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.c.Ping(ctx); err != nil {
		t.Fatalf("%s: ping: %v", s.name, err)
	}
	var out []client.PluginEvent
	for {
		select {
		case f := <-s.c.Events():
			if ev, ok := client.PluginEventOf(f); ok {
				if s.cb != nil {
					t.Fatalf("%s: a plugin event reached Events although OnPluginEvent is set: %+v", s.name, ev)
				}
				out = append(out, ev)
			}
		case ev := <-s.cb:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// publishReq is a PublishEventRequest as protojson (what both test
// plugins forward to PublishEvent).
func publishReq(t *testing.T, r *pb.PublishEventRequest) json.RawMessage {
	t.Helper()
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishAnswer is what the test plugins answer to op publish.
type publishAnswer struct {
	Delivered int    `json:"delivered"`
	Code      string `json:"code"`
	Error     string `json:"error"`
}

// echoAnswer is what the test plugins answer to op echo.
type echoAnswer struct {
	Op, Ref, Room string
	UserID        string          `json:"user_id"`
	SessionID     uint64          `json:"session_id"`
	Data          json.RawMessage `json:"data"`
}

func clientErr(err error) *client.Error {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce
	}
	return &client.Error{Code: "transport", Message: fmt.Sprint(err)}
}

// Done-when (item 7): a client frame in a plugin's namespace gets the
// plugin's answer, from a process plugin and a WASM module alike; bad input
// and unauthorised senders never reach the plugin; failures answer
// unavailable; a plugin event reaches exactly the targeted room, user or
// session; a plugin without events.publish is refused PERMISSION_DENIED.
func TestPluginFrames(t *testing.T) {
	bin, wasm := framesPrograms(t)
	e := start(t, framesYAML(bin, wasm))
	ctx := context.Background()
	// The room's members: admin (e.ac) and bob with two sessions, the
	// second receiving plugin events through OnPluginEvent; carol is in no
	// room.
	carol := e.NewUser(t, "carol")
	cb := make(chan client.PluginEvent, 64)
	bc2, err := client.Dial(ctx, e.WSURL, client.Options{Token: e.bob.Token, OnPluginEvent: func(ev client.PluginEvent) { cb <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bc2.Close() })
	admin := &session{name: "admin", c: e.ac}
	bob1 := &session{name: "bob#1", c: e.bc}
	bob2 := &session{name: "bob#2", c: bc2, cb: cb}
	carolS := &session{name: "carol", c: e.Dial(t, carol)}
	everyone := []*session{admin, bob1, bob2, carolS}

	for _, p := range []string{"frames", "wframes"} {
		t.Run(p, func(t *testing.T) {
			waitFor(t, p+" to answer", func() bool {
				_, err := pluginCall(e.bc, p, "echo", client.PluginOptions{})
				if err != nil {
					t.Logf("%s: %v", p, err)
				}
				return err == nil
			})
			calls := func() int64 { return hookStat(e.status(t, p), "OnClientFrame").Calls }

			// The answer, to the sender only, with its ref; the plugin
			// sees the op, ref, room, data and the verified sender.
			r, err := frameCall(e.bc, protocol.ClientFrame{Ref: "echo-1", Plugin: p, Op: "echo", Room: e.room, Data: json.RawMessage(`{"x":[1,2]}`)})
			if err != nil || r.Type != protocol.TypePluginReply || r.Ref != "echo-1" || r.Plugin != p {
				t.Fatalf("echo: %+v %v", r, err)
			}
			var echo echoAnswer
			if err := json.Unmarshal(r.Data, &echo); err != nil {
				t.Fatalf("echo data %s: %v", r.Data, err)
			}
			if echo.Op != "echo" || echo.Ref != "echo-1" || echo.Room != e.room || echo.UserID != e.bob.ID ||
				echo.SessionID == 0 || string(echo.Data) != `{"x":[1,2]}` {
				t.Fatalf("the plugin saw %+v", echo)
			}
			bob1Session := echo.SessionID
			data, err := pluginCall(bc2, p, "echo", client.PluginOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var echo2 echoAnswer
			_ = json.Unmarshal(data, &echo2)
			if echo2.Room != "" || string(echo2.Data) != "null" || echo2.SessionID == 0 || echo2.SessionID == bob1Session {
				t.Fatalf("second session's echo %+v (first session %d)", echo2, bob1Session)
			}
			bob2Session := echo2.SessionID
			for _, s := range everyone {
				if evs := s.received(t); len(evs) > 0 {
					t.Fatalf("%s received plugin events nobody published: %+v", s.name, evs)
				}
			}

			// Refused before the plugin: not a member of the room, unknown
			// plugin, plugin without the hook, oversized data, bad op.
			before := calls()
			refusals := []struct {
				name string
				f    protocol.ClientFrame
				code []string
			}{
				{"non-member names the room", protocol.ClientFrame{Plugin: p, Op: "echo", Room: e.room}, []string{protocol.CodeForbidden, protocol.CodeNotFound}},
				{"unknown room", protocol.ClientFrame{Plugin: p, Op: "echo", Room: "0190a3c2-0000-7000-8000-000000000001"}, []string{protocol.CodeNotFound}},
				{"unknown plugin", protocol.ClientFrame{Plugin: "nope", Op: "echo"}, []string{protocol.CodeNotFound}},
				{"plugin without OnClientFrame", protocol.ClientFrame{Plugin: "frames-nohook", Op: "echo"}, []string{protocol.CodeNotFound}},
				{"data over 32 KiB", protocol.ClientFrame{Plugin: p, Op: "echo", Data: json.RawMessage(`"` + strings.Repeat("x", 33<<10) + `"`)}, []string{protocol.CodeTooLarge}},
				{"invalid op", protocol.ClientFrame{Plugin: p, Op: "Echo!"}, []string{protocol.CodeBadRequest}},
				{"invalid plugin id", protocol.ClientFrame{Plugin: "Frames", Op: "echo"}, []string{protocol.CodeBadRequest}},
			}
			for _, rc := range refusals {
				rc.f.Ref = "refused"
				r, err := frameCall(carolS.c, rc.f)
				if ce := clientErr(err); !slices.Contains(rc.code, ce.Code) || r.Ref != "refused" {
					t.Errorf("%s: reply %+v err %v; want %v with the ref", rc.name, r, err, rc.code)
				}
			}
			if after := calls(); after != before {
				t.Fatalf("refused frames reached the plugin: OnClientFrame calls %d → %d", before, after)
			}
			for _, s := range everyone {
				if evs := s.received(t); len(evs) > 0 {
					t.Fatalf("%s received plugin events after refused frames: %+v", s.name, evs)
				}
			}

			// The plugin's own refusals and its failures.
			_, err = pluginCall(e.bc, p, "refuse", client.PluginOptions{Data: json.RawMessage(`{"code":"conflict","message":"already voted"}`)})
			if ce := clientErr(err); ce.Code != protocol.CodeConflict || ce.Message != "already voted" {
				t.Errorf("refuse conflict: %v", err)
			}
			_, err = pluginCall(e.bc, p, "refuse", client.PluginOptions{Data: json.RawMessage(`{"code":"teapot","message":"short and stout"}`)})
			if ce := clientErr(err); ce.Code != protocol.CodeBadRequest || ce.Message != "short and stout" {
				t.Errorf("refuse with a code outside the list: %v", err)
			}
			for _, c := range []struct{ plugin, op string }{{p, "fail"}, {p, "invalid"}, {p + "-slow", "slow"}} {
				if _, err := pluginCall(e.bc, c.plugin, c.op, client.PluginOptions{}); clientErr(err).Code != protocol.CodeUnavailable {
					t.Errorf("%s %s: %v; want unavailable", c.plugin, c.op, err)
				}
			}

			// Events reach exactly their target.
			publish := func(from *session, plugin string, req *pb.PublishEventRequest) publishAnswer {
				t.Helper()
				op := "publish"
				if len(req.DataJson) > 32<<10 {
					// Too big for a client frame: the plugin makes it.
					op, req = "publish-big", proto.CloneOf(req)
					req.DataJson = nil
				}
				data, err := pluginCall(from.c, plugin, op, client.PluginOptions{Data: publishReq(t, req)})
				if err != nil {
					t.Fatalf("publish %q through %s: %v", req.Name, plugin, err)
				}
				var a publishAnswer
				if err := json.Unmarshal(data, &a); err != nil {
					t.Fatalf("publish answer %s: %v", data, err)
				}
				return a
			}
			payload := []byte(`{"votes":3,"who":["bob"]}`)
			targets := []struct {
				name string
				req  *pb.PublishEventRequest
				want []*session
			}{
				{"room", &pb.PublishEventRequest{Room: e.room, Name: "poll.updated", DataJson: payload}, []*session{admin, bob1, bob2}},
				{"user", &pb.PublishEventRequest{UserId: e.bob.ID, Name: "poll.updated", DataJson: payload}, []*session{bob1, bob2}},
				{"session", &pb.PublishEventRequest{SessionId: bob2Session, Name: "poll.updated", DataJson: payload}, []*session{bob2}},
				{"the other session", &pb.PublishEventRequest{SessionId: bob1Session, Name: "poll.updated"}, []*session{bob1}},
			}
			for _, tc := range targets {
				a := publish(carolS, p, tc.req)
				if a.Code != "" || a.Delivered != len(tc.want) {
					t.Fatalf("%s: answer %+v; want delivered %d", tc.name, a, len(tc.want))
				}
				for _, s := range everyone {
					evs := s.received(t)
					if !slices.Contains(tc.want, s) {
						if len(evs) > 0 {
							t.Errorf("%s: %s is not targeted but received %+v", tc.name, s.name, evs)
						}
						continue
					}
					if len(evs) != 1 {
						t.Errorf("%s: %s received %d events, want 1: %+v", tc.name, s.name, len(evs), evs)
						continue
					}
					ev := evs[0]
					wantData := string(tc.req.DataJson)
					if ev.Plugin != p || ev.Name != "poll.updated" || ev.Room != tc.req.Room || string(ev.Data) != wantData {
						t.Errorf("%s: %s received %+v", tc.name, s.name, ev)
					}
				}
			}

			// Refusals: no grant (PERMISSION_DENIED), and bad requests.
			refused := []struct {
				name, plugin, code string
				req                *pb.PublishEventRequest
			}{
				{"without events.publish", p + "-mute", "PERMISSION_DENIED", &pb.PublishEventRequest{Room: e.room, Name: "x"}},
				{"two targets", p, "INVALID_ARGUMENT", &pb.PublishEventRequest{Room: e.room, UserId: e.bob.ID, Name: "x"}},
				{"no target", p, "INVALID_ARGUMENT", &pb.PublishEventRequest{Name: "x"}},
				{"bad name", p, "INVALID_ARGUMENT", &pb.PublishEventRequest{Room: e.room, Name: "Poll Updated"}},
				{"data not JSON", p, "INVALID_ARGUMENT", &pb.PublishEventRequest{Room: e.room, Name: "x", DataJson: []byte("{nope")}},
				{"data over 64 KiB", p, "INVALID_ARGUMENT", &pb.PublishEventRequest{Room: e.room, Name: "x", DataJson: []byte(`"` + strings.Repeat("x", 64<<10) + `"`)}},
				{"unknown room", p, "NOT_FOUND", &pb.PublishEventRequest{Room: "0190a3c2-0000-7000-8000-000000000001", Name: "x"}},
				{"unknown user", p, "NOT_FOUND", &pb.PublishEventRequest{UserId: "0190a3c2-0000-7000-8000-000000000002", Name: "x"}},
			}
			for _, tc := range refused {
				if a := publish(bob1, tc.plugin, tc.req); a.Code != tc.code || a.Delivered != 0 || a.Error == "" {
					t.Errorf("%s: answer %+v; want %s", tc.name, a, tc.code)
				}
			}
			for _, s := range everyone {
				if evs := s.received(t); len(evs) > 0 {
					t.Errorf("%s received events of refused publishes: %+v", s.name, evs)
				}
			}
			if a := publish(bob1, p, &pb.PublishEventRequest{SessionId: 1 << 60, Name: "x"}); a.Code != "" || a.Delivered != 0 {
				t.Errorf("a session that is not connected: %+v; want delivered 0", a)
			}
		})
	}
	if st := e.status(t, "wframes-mute"); st.WASM == nil || st.WASM.Denied == 0 {
		t.Errorf("the module's refused host call is not counted: %+v", st.WASM)
	}
	alive(t, e.ac, e.bc, bc2, carolS.c)
}

// seenRequest is what the test plugin's HTTP handler reports it was told
// (plugin.CallerOf for the identity).
type seenRequest struct {
	Method, Path string
	RawQuery     string              `json:"raw_query"`
	RemoteAddr   string              `json:"remote_addr"`
	UserID       string              `json:"user_id"`
	SessionID    string              `json:"session_id"`
	Headers      map[string][]string `json:"headers"`
}

// Done-when (item 8): a request to /plugins/{id}/ carrying a bearer token,
// cookies and a token in the query reaches the plugin without any of them
// but with the verified user and session; a forged or expired token makes
// the request anonymous; through a trusted proxy the plugin sees the
// resolved client address; the plugin can set only its own cookies.
func TestPluginHTTPGetsIdentityNotCredentials(t *testing.T) {
	bin, _ := framesPrograms(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "plugins.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("plugins:\n  - id: frames\n    command: [%q]\n", bin)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
		c.Plugins = path
		c.TrustedProxies = []string{"127.0.0.1"}
	}})
	env.NewUser(t, "root") // the first account is superadmin; bob is a member
	bob := env.NewUser(t, "bob")
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(bob.Token, claims); err != nil {
		t.Fatal(err)
	}
	sid, _ := claims["sid"].(string)
	if sid == "" {
		t.Fatalf("bob's token has no sid: %v", claims)
	}
	kid, key := env.SigningKey(t)
	expiredClaims := jwt.MapClaims{}
	for k, v := range claims {
		expiredClaims[k] = v
	}
	now := time.Now().Unix()
	expiredClaims["exp"], expiredClaims["iat"], expiredClaims["nbf"] = now-3600, now-7200, now-7200
	expiredTok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, expiredClaims)
	expiredTok.Header["kid"] = kid
	expired, err := expiredTok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(bob.Token, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[0] ^= 0xff
	forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	// get sends a request to the plugin carrying tok everywhere a token can
	// hide, and returns what the plugin's handler saw and the response.
	get := func(t *testing.T, tok, forwardedFor string) (*seenRequest, []byte, *http.Response) {
		t.Helper()
		var head *seenRequest
		var body []byte
		var resp *http.Response
		waitFor(t, "the plugin to answer HTTP", func() bool {
			req, err := http.NewRequest("GET", env.URL+"/plugins/frames/page/x?a=1&access_token="+tok+"&b=%20two&access%5Ftoken="+tok, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0")
			req.Header.Set("Sec-WebSocket-Protocol", "unhidra.v1, bearer."+tok)
			req.Header.Set("Cookie", "unhidra_console=console-secret; unhidra-frames-pref=dark; other=1; unhidra-framesx-a=2")
			req.Header.Set("X-Custom", "kept")
			if forwardedFor != "" {
				req.Header.Set("X-Forwarded-For", forwardedFor)
			}
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				return false // still starting
			}
			head = &seenRequest{}
			if err := json.Unmarshal(body, head); err != nil {
				t.Fatalf("HTTP %d: body %s: %v", resp.StatusCode, body, err)
			}
			return true
		})
		for _, secret := range []string{tok, parts[2], "cHJveHk6c2VjcmV0", "console-secret"} {
			if secret != "" && strings.Contains(string(body), secret) {
				t.Fatalf("the plugin received a credential (%.12s…): %s", secret, body)
			}
		}
		var cookies []string
		for name, values := range head.Headers {
			switch strings.ToLower(name) {
			case "authorization", "proxy-authorization", "sec-websocket-protocol":
				t.Fatalf("the plugin received header %s: %v", name, values)
			case "cookie":
				cookies = append(cookies, values...)
			}
		}
		if strings.Join(cookies, "|") != "unhidra-frames-pref=dark" {
			t.Fatalf("cookies the plugin received: %q; want only its own", cookies)
		}
		if head.Path != "/page/x" || head.RawQuery != "a=1&b=%20two" {
			t.Fatalf("path %q query %q", head.Path, head.RawQuery)
		}
		if v := head.Headers["X-Custom"]; len(v) != 1 || v[0] != "kept" {
			t.Fatalf("an ordinary header was not passed on: %v", head.Headers)
		}
		return head, body, resp
	}

	t.Run("valid token", func(t *testing.T) {
		head, _, resp := get(t, bob.Token, "198.51.100.9, 203.0.113.7")
		if head.UserID != bob.ID || head.SessionID != sid {
			t.Fatalf("identity %q/%q; want %s/%s", head.UserID, head.SessionID, bob.ID, sid)
		}
		if head.RemoteAddr != "203.0.113.7" {
			t.Fatalf("client address %q; want the one the trusted proxy saw", head.RemoteAddr)
		}
		var set []string
		for _, v := range resp.Header.Values("Set-Cookie") {
			name, _, _ := strings.Cut(v, "=")
			set = append(set, name)
		}
		if strings.Join(set, ",") != "unhidra-frames-ok,unhidra-frames-nopath" {
			t.Fatalf("cookies the plugin set: %v; want only unhidra-frames-ok and -nopath", resp.Header.Values("Set-Cookie"))
		}
	})
	for _, tc := range []struct{ name, tok string }{{"forged token", forged}, {"expired token", expired}, {"no token", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			head, _, resp := get(t, tc.tok, "")
			if head.UserID != "" || head.SessionID != "" {
				t.Fatalf("identity %q/%q from a %s", head.UserID, head.SessionID, tc.name)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d; an anonymous request must reach the plugin", resp.StatusCode)
			}
			if head.RemoteAddr != "127.0.0.1" {
				t.Fatalf("client address %q; want the peer without a forwarded header", head.RemoteAddr)
			}
		})
	}
}
