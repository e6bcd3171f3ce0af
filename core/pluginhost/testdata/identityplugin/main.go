// Command identityplugin is the identity and provisioning test plugin, a
// real process speaking the raw contract (plugin.proto over go-plugin):
//
//   - it registers a sign-in button whose page (GET /login) asks for a
//     username; submitting it resolves the identity (creating the account
//     just in time) and issues a login, then redirects to the console with
//     the one-time code;
//   - it is a second factor for users whose name starts with "mfa-": its
//     page (GET /mfa?challenge=…) accepts the code 424242 and confirms the
//     challenge, anything else counts as a failed attempt;
//   - its command (/<config command>, default the plugin id) calls any host
//     method: "/idp ListUsers {"limit":5}" answers "OK <protojson>" or
//     "ERR <CODE>: <message>".
//
// The first argument "broken-factor" makes SecondFactorRequired fail.
// It never prints codes, challenges or tokens.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// Issuer is the identity provider this plugin plays.
const Issuer = "https://testid.example"

// FactorCode is the code the second-factor page accepts.
const FactorCode = "424242"

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	goplugin.Serve(&goplugin.ServeConfig{HandshakeConfig: plugin.Handshake,
		Plugins:    goplugin.PluginSet{plugin.PluginName: &grpcPlugin{mode: mode}},
		GRPCServer: goplugin.DefaultGRPCServer})
}

type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	mode string
}

func (p *grpcPlugin) GRPCServer(b *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &idp{broker: b, mode: p.mode})
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plugin side only")
}

type idp struct {
	pb.UnimplementedPluginServer
	broker *goplugin.GRPCBroker
	mode   string

	mu   sync.Mutex
	id   string
	conn *grpc.ClientConn
	host pb.HostClient
}

func (p *idp) Handshake(context.Context, *pb.HandshakeRequest) (*pb.HandshakeResponse, error) {
	return &pb.HandshakeResponse{ContractVersion: uint32(pb.Version_CONTRACT_VERSION), Sdk: "identityplugin/raw",
		Hooks: []pb.Hook{pb.Hook_HOOK_ON_ACTIVATE, pb.Hook_HOOK_SERVE_HTTP, pb.Hook_HOOK_SECOND_FACTOR_REQUIRED,
			pb.Hook_HOOK_EXECUTE_COMMAND}}, nil
}

func (p *idp) OnActivate(ctx context.Context, r *pb.ActivateRequest) (*pb.Empty, error) {
	conn, err := p.broker.Dial(r.HostBrokerId)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Command string `json:"command"`
		Label   string `json:"label"`
	}
	if len(r.ConfigJson) > 0 {
		if err := json.Unmarshal(r.ConfigJson, &cfg); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if cfg.Command == "" {
		cfg.Command = r.PluginId
	}
	if cfg.Label == "" {
		cfg.Label = "Sign in with TestID"
	}
	p.mu.Lock()
	p.id, p.conn, p.host = r.PluginId, conn, pb.NewHostClient(conn)
	p.mu.Unlock()
	// Without the grants these are refused; the plugin runs on regardless
	// (the tests look at what it can still do).
	if _, err := p.host.RegisterCommand(ctx, &pb.Command{Trigger: cfg.Command, Description: "call a host method"}); err != nil {
		fmt.Fprintln(os.Stderr, "identityplugin: register command:", status.Code(err))
	}
	if _, err := p.host.RegisterLoginMethod(ctx, &pb.LoginMethod{Id: "testid", Label: cfg.Label, Path: "/login"}); err != nil {
		fmt.Fprintln(os.Stderr, "identityplugin: register login method:", status.Code(err))
	}
	return &pb.Empty{}, nil
}

func (p *idp) SecondFactorRequired(_ context.Context, r *pb.SecondFactorRequest) (*pb.SecondFactorResponse, error) {
	if p.mode == "broken-factor" {
		return nil, errors.New("the factor service is down")
	}
	if !strings.HasPrefix(r.Username, "mfa-") {
		return &pb.SecondFactorResponse{}, nil
	}
	return &pb.SecondFactorResponse{Required: true, Factors: []*pb.Factor{{Id: "code", Label: "TestID code", Path: "/mfa"}}}, nil
}

// ExecuteCommand calls the host method named by the first word with the
// rest as its protojson request.
func (p *idp) ExecuteCommand(ctx context.Context, r *pb.CommandRequest) (*pb.CommandResponse, error) {
	method, req, _ := strings.Cut(strings.TrimSpace(r.Args), " ")
	out, err := p.call(ctx, method, req)
	if err != nil {
		st, _ := status.FromError(err)
		return &pb.CommandResponse{Text: "ERR " + codeName(st.Code().String()) + ": " + st.Message()}, nil
	}
	return &pb.CommandResponse{Text: "OK " + out}, nil
}

// codeName turns "PermissionDenied" into "PERMISSION_DENIED".
func codeName(c string) string {
	var b strings.Builder
	for i, r := range c {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// call invokes a Host rpc by name with a protojson request.
func (p *idp) call(ctx context.Context, method, req string) (string, error) {
	md := pb.File_pluginv1_plugin_proto.Services().ByName("Host").Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return "", status.Errorf(codes.Unknown, "no host method %q", method)
	}
	newMsg := func(n protoreflect.FullName) proto.Message {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(n)
		if err != nil {
			panic(err)
		}
		return mt.New().Interface()
	}
	in, out := newMsg(md.Input().FullName()), newMsg(md.Output().FullName())
	if strings.TrimSpace(req) != "" {
		if err := protojson.Unmarshal([]byte(req), in); err != nil {
			return "", status.Errorf(codes.InvalidArgument, "request: %v", err)
		}
	}
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if err := conn.Invoke(ctx, "/unhidra.plugin.v1.Host/"+method, in, out); err != nil {
		return "", err
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(out)
	return string(b), err
}

// request is one HTTP request from the host.
type request struct {
	head *pb.HTTPRequestHead
	form url.Values
}

func (r *request) header(name string) string {
	for _, h := range r.head.Headers {
		if strings.EqualFold(h.Name, name) && len(h.Values) > 0 {
			return h.Values[0]
		}
	}
	return ""
}

// response is what a page answers.
type response struct {
	status   int
	location string
	body     string
}

func (p *idp) ServeHTTP(stream pb.Plugin_ServeHTTPServer) error {
	var (
		head *pb.HTTPRequestHead
		body bytes.Buffer
	)
	for {
		part, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if part.Head != nil {
			head = part.Head
		}
		body.Write(part.Body)
	}
	if head == nil {
		return errors.New("no request head")
	}
	form, _ := url.ParseQuery(head.RawQuery)
	if head.Method == "POST" {
		posted, _ := url.ParseQuery(body.String())
		for k, v := range posted {
			form[k] = v
		}
	}
	resp := p.route(stream.Context(), &request{head: head, form: form})
	h := &pb.HTTPResponseHead{Status: int32(resp.status), Headers: []*pb.Header{
		{Name: "Content-Type", Values: []string{"text/html; charset=utf-8"}},
		{Name: "Cache-Control", Values: []string{"no-store"}},
		{Name: "Referrer-Policy", Values: []string{"no-referrer"}}}}
	if resp.location != "" {
		h.Headers = append(h.Headers, &pb.Header{Name: "Location", Values: []string{resp.location}})
	}
	return stream.Send(&pb.HTTPResponsePart{Head: h, Body: []byte(resp.body)})
}

func page(title, inner string) string {
	return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>` + html.EscapeString(title) +
		`</title></head><body><h1>` + html.EscapeString(title) + `</h1>` + inner + `</body></html>`
}

func (p *idp) route(ctx context.Context, r *request) response {
	p.mu.Lock()
	host := p.host
	p.mu.Unlock()
	switch r.head.Method + " " + r.head.Path {
	case "GET /login":
		return response{status: 200, body: page("TestID sign-in", `<form method="post" action="login">
<label for="tid-username">TestID username</label> <input id="tid-username" name="username" autocomplete="off">
<button id="tid-submit" type="submit">Continue</button></form>`)}
	case "POST /login":
		name := strings.TrimSpace(r.form.Get("username"))
		if name == "" {
			return response{status: 400, body: page("TestID sign-in", "<p>Enter a username.</p>")}
		}
		res, err := host.ResolveIdentity(ctx, &pb.ResolveIdentityRequest{Create: true, UpdateProfile: true,
			Identity: &pb.ExternalIdentity{Issuer: Issuer, Subject: "sub-" + name, Username: name,
				Email: name + "@testid.example", EmailVerified: true, DisplayName: "TestID " + name}})
		if err != nil {
			return response{status: 502, body: page("TestID error", "<p>"+html.EscapeString(err.Error())+"</p>")}
		}
		login, err := host.IssueLogin(ctx, &pb.IssueLoginRequest{UserId: res.User.Id, Device: "TestID browser",
			ClientAddr: r.head.RemoteAddr, UserAgent: r.header("User-Agent")})
		if err != nil {
			return response{status: 403, body: page("TestID error", "<p>"+html.EscapeString(err.Error())+"</p>")}
		}
		return response{status: 302, location: login.Redirect}
	case "GET /mfa":
		ch := r.form.Get("challenge")
		c, err := host.GetLoginChallenge(ctx, &pb.LoginChallengeRequest{Challenge: ch})
		if err != nil {
			return response{status: 404, body: page("TestID code", "<p>This login expired; sign in again.</p>")}
		}
		return response{status: 200, body: page("TestID code", mfaForm(ch, c.Username, ""))}
	case "POST /mfa":
		ch := r.form.Get("challenge")
		ok := r.form.Get("code") == FactorCode
		c, err := host.ConfirmSecondFactor(ctx, &pb.ConfirmSecondFactorRequest{Challenge: ch, Factor: "code", Ok: ok})
		if err != nil {
			return response{status: 403, body: page("TestID code", "<p id=\"tid-error\">"+html.EscapeString(err.Error())+"</p>")}
		}
		if !ok {
			return response{status: 200, body: page("TestID code", mfaForm(ch, c.Username, "Wrong code, try again."))}
		}
		return response{status: 302, location: "/#/login/mfa/" + url.PathEscape(ch)}
	}
	return response{status: 404, body: page("Not found", "")}
}

func mfaForm(challenge, username, msg string) string {
	if msg != "" {
		msg = `<p id="tid-error">` + html.EscapeString(msg) + `</p>`
	}
	return msg + `<p>Code for ` + html.EscapeString(username) + `</p><form method="post" action="mfa">
<input type="hidden" name="challenge" value="` + html.EscapeString(challenge) + `">
<label for="tid-code">Code</label> <input id="tid-code" name="code" autocomplete="one-time-code">
<button id="tid-confirm" type="submit">Confirm</button></form>`
}
