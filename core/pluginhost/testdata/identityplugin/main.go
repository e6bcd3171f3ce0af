// Command identityplugin is the identity and provisioning test plugin, a
// real process built with the Go SDK:
//
//   - it registers a sign-in button whose page (GET /login) asks for a
//     username; submitting it resolves the identity (creating the account
//     just in time) and issues a login, then redirects to the console with
//     the one-time code;
//   - it is a second factor for users whose name starts with "mfa-": its
//     page (GET /mfa?challenge=…) accepts the code 424242 and confirms the
//     challenge, anything else counts as a failed attempt;
//   - its command (/<config command>, default the plugin id) calls any host
//     method by name: "/idp ListUsers {"limit":5}" answers "OK <protojson>"
//     or "ERR <CODE>: <message>".
//
// The first argument "broken-factor" makes SecondFactorRequired fail.
// It never prints codes, challenges or tokens.
package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/unhidra/unhidra/sdk/plugin"
)

// Issuer is the identity provider this plugin plays.
const Issuer = "https://testid.example"

// FactorCode is the code the second-factor page accepts.
const FactorCode = "424242"

func main() {
	p := &idp{}
	if len(os.Args) > 1 {
		p.mode = os.Args[1]
	}
	plugin.Serve(p)
}

type idp struct {
	mode string
	mu   sync.Mutex
	host *plugin.Host
}

func (p *idp) OnActivate(ctx context.Context, h *plugin.Host) error {
	var cfg struct {
		Command string `json:"command"`
		Label   string `json:"label"`
	}
	if err := h.Config(&cfg); err != nil {
		return err
	}
	if cfg.Command == "" {
		cfg.Command = h.ID()
	}
	if cfg.Label == "" {
		cfg.Label = "Sign in with TestID"
	}
	p.mu.Lock()
	p.host = h
	p.mu.Unlock()
	// Without the grants these are refused; the plugin runs on regardless
	// (the tests look at what it can still do).
	if err := h.RegisterCommand(ctx, &plugin.Command{Trigger: cfg.Command, Description: "call a host method"}); err != nil {
		fmt.Fprintln(os.Stderr, "identityplugin: register command:", status.Code(err))
	}
	if err := h.RegisterLoginMethod(ctx, &plugin.LoginMethod{Id: "testid", Label: cfg.Label, Path: "/login"}); err != nil {
		fmt.Fprintln(os.Stderr, "identityplugin: register login method:", status.Code(err))
	}
	return nil
}

func (p *idp) Host() *plugin.Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.host
}

func (p *idp) SecondFactorRequired(_ context.Context, r *plugin.SecondFactorRequest) (*plugin.SecondFactorResponse, error) {
	if p.mode == "broken-factor" {
		return nil, errors.New("the factor service is down")
	}
	if !strings.HasPrefix(r.Username, "mfa-") {
		return &plugin.SecondFactorResponse{}, nil
	}
	return &plugin.SecondFactorResponse{Required: true, Factors: []*plugin.Factor{{Id: "code", Label: "TestID code", Path: "/mfa"}}}, nil
}

// ExecuteCommand calls the Host method named by the first word with the
// rest as its protojson request.
func (p *idp) ExecuteCommand(ctx context.Context, r *plugin.CommandRequest) (*plugin.CommandResponse, error) {
	method, req, _ := strings.Cut(strings.TrimSpace(r.Args), " ")
	out, err := call(ctx, p.Host(), method, req)
	if err != nil {
		st := status.Convert(err)
		return &plugin.CommandResponse{Text: "ERR " + codeName(st.Code().String()) + ": " + st.Message()}, nil
	}
	return &plugin.CommandResponse{Text: "OK " + out}, nil
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

// call runs the SDK's Host method `method` (one per host call, generated:
// (ctx, *Req) (*Resp, error) or (ctx, *Req) error) with a protojson request.
func call(ctx context.Context, h *plugin.Host, method, req string) (string, error) {
	m := reflect.ValueOf(h).MethodByName(method)
	if !m.IsValid() || m.Type().NumIn() != 2 {
		return "", status.Errorf(codes.Unimplemented, "no host method %q", method)
	}
	in, ok := reflect.New(m.Type().In(1).Elem()).Interface().(proto.Message)
	if !ok {
		return "", status.Errorf(codes.Unimplemented, "%s is not a host call", method)
	}
	if strings.TrimSpace(req) != "" {
		if err := protojson.Unmarshal([]byte(req), in); err != nil {
			return "", status.Errorf(codes.InvalidArgument, "request: %v", err)
		}
	}
	outs := m.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(in)})
	if err, _ := outs[len(outs)-1].Interface().(error); err != nil {
		return "", err
	}
	if len(outs) == 1 {
		return "{}", nil
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(outs[0].Interface().(proto.Message))
	return string(b), err
}

func page(w http.ResponseWriter, status int, title, inner string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>`+html.EscapeString(title)+
		`</title></head><body><h1>`+html.EscapeString(title)+`</h1>`+inner+`</body></html>`)
}

// redirect answers 302 to a console path (relative to the server).
func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// ServeHTTP serves the sign-in page and the second-factor page.
func (p *idp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, host := r.Context(), p.Host()
	switch r.Method + " " + r.URL.Path {
	case "GET /login":
		page(w, 200, "TestID sign-in", `<form method="post" action="login">
<label for="tid-username">TestID username</label> <input id="tid-username" name="username" autocomplete="off">
<button id="tid-submit" type="submit">Continue</button></form>`)
	case "POST /login":
		name := strings.TrimSpace(r.FormValue("username"))
		if name == "" {
			page(w, 400, "TestID sign-in", "<p>Enter a username.</p>")
			return
		}
		res, err := host.ResolveIdentity(ctx, &plugin.ResolveIdentityRequest{Create: true, UpdateProfile: true,
			Identity: &plugin.ExternalIdentity{Issuer: Issuer, Subject: "sub-" + name, Username: name,
				Email: name + "@testid.example", EmailVerified: true, DisplayName: "TestID " + name}})
		if err != nil {
			page(w, 502, "TestID error", "<p>"+html.EscapeString(err.Error())+"</p>")
			return
		}
		login, err := host.IssueLogin(ctx, &plugin.IssueLoginRequest{UserId: res.User.Id, Device: "TestID browser",
			ClientAddr: r.RemoteAddr, UserAgent: r.UserAgent()})
		if err != nil {
			page(w, 403, "TestID error", "<p>"+html.EscapeString(err.Error())+"</p>")
			return
		}
		redirect(w, login.Redirect)
	case "GET /mfa":
		ch := r.FormValue("challenge")
		c, err := host.GetLoginChallenge(ctx, &plugin.LoginChallengeRequest{Challenge: ch})
		if err != nil {
			page(w, 404, "TestID code", "<p>This login expired; sign in again.</p>")
			return
		}
		page(w, 200, "TestID code", mfaForm(ch, c.Username, ""))
	case "POST /mfa":
		ch := r.FormValue("challenge")
		ok := r.FormValue("code") == FactorCode
		c, err := host.ConfirmSecondFactor(ctx, &plugin.ConfirmSecondFactorRequest{Challenge: ch, Factor: "code", Ok: ok})
		if err != nil {
			page(w, 403, "TestID code", `<p id="tid-error">`+html.EscapeString(err.Error())+"</p>")
			return
		}
		if !ok {
			page(w, 200, "TestID code", mfaForm(ch, c.Username, "Wrong code, try again."))
			return
		}
		redirect(w, "/#/login/mfa/"+url.PathEscape(ch))
	default:
		page(w, 404, "Not found", "")
	}
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
