package pluginhost

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Identity plugins (OIDC, SAML, WebAuthn, TOTP): sign-in buttons, external
// identities, logins handed to the console through one-time codes, and
// second factors. The accounts, codes and challenges themselves live in
// core/auth; this file checks what plugins send and routes it there.

// maxLoginMethods bounds the sign-in buttons one plugin may register.
const maxLoginMethods = 8

// LoginMethod is a sign-in button a plugin registered, as the console shows
// it: URL is /plugins/{plugin}{path}.
type LoginMethod struct {
	Plugin string `json:"plugin"`
	ID     string `json:"id"`
	Label  string `json:"label"`
	URL    string `json:"url"`
}

// pluginPathRE is a path under /plugins/{id}: absolute, URL characters only
// (a query is allowed, a fragment is not).
var pluginPathRE = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$`)

func checkPluginPath(what, p string) error {
	if len(p) > 256 || !pluginPathRE.MatchString(p) || strings.HasPrefix(p, "//") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return fmt.Errorf("%s %q: want a path under the plugin's URL starting with \"/\" (at most 256 URL characters, no \"..\")", what, p)
	}
	return nil
}

func checkLabel(what, l string) error {
	if l == "" || len(l) > 128 || !utf8.ValidString(l) || strings.IndexFunc(l, unicode.IsControl) >= 0 {
		return fmt.Errorf("%s %q: want 1–128 bytes of UTF-8 without control characters", what, l)
	}
	return nil
}

func (h *Host) registerLoginMethod(m *managed, lm *pb.LoginMethod) error {
	h.loginMu.Lock()
	defer h.loginMu.Unlock()
	ms := h.logins[m]
	for i, old := range ms {
		if old.Id == lm.Id {
			ms[i] = lm
			return nil
		}
	}
	if len(ms) >= maxLoginMethods {
		return fmt.Errorf("plugin %s has %d login methods, the most one plugin may register", m.id, maxLoginMethods)
	}
	h.logins[m] = append(ms, lm)
	return nil
}

func (h *Host) dropLoginMethods(m *managed) {
	h.loginMu.Lock()
	delete(h.logins, m)
	h.loginMu.Unlock()
}

// LoginMethods lists the sign-in buttons of the running plugins, in
// plugins.yaml order and, within a plugin, in registration order. A plugin
// that stopped or is down has none.
func (h *Host) LoginMethods() []LoginMethod {
	out := []LoginMethod{}
	h.loginMu.RLock()
	defer h.loginMu.RUnlock()
	for _, m := range *h.order.Load() {
		if m.cur.Load() == nil {
			continue
		}
		for _, lm := range h.logins[m] {
			out = append(out, LoginMethod{Plugin: m.id, ID: lm.Id, Label: lm.Label, URL: "/plugins/" + m.id + lm.Path})
		}
	}
	return out
}

// SecondFactorRequired implements auth.LoginHooks: every plugin
// implementing the hook (holding the identity grant), in config order, may
// require a second factor; the login then offers the factors of all that
// did. A plugin that fails (down, error, deadline, an invalid answer)
// follows its policy, closed by default: the login is refused with
// `unavailable` rather than let through without the factor.
func (h *Host) SecondFactorRequired(ctx context.Context, e auth.LoginEvent, challenge string) ([]auth.Factor, error) {
	hook := pb.Hook_HOOK_SECOND_FACTOR_REQUIRED
	req := &pb.SecondFactorRequest{UserId: e.User.ID, Username: e.User.Username, Method: e.Method, Challenge: challenge,
		Device: e.Device, ClientAddr: e.IP}
	var out []auth.Factor
	for _, id := range h.Implementers(hook) {
		m := h.plugin(id)
		if m == nil {
			continue
		}
		resp := &pb.SecondFactorResponse{}
		err := h.Call(ctx, id, hook, req, resp)
		if err == nil {
			if err = checkFactors(resp); err != nil {
				m.hooks[hook].failed(err, false)
			}
		}
		if err != nil {
			if rerr := m.failure(m.hooks[hook], err, "login"); rerr != nil {
				return nil, rerr
			}
			continue
		}
		if !resp.Required {
			continue
		}
		for _, f := range resp.Factors {
			out = append(out, auth.Factor{Plugin: id, ID: f.Id, Label: f.Label, URL: "/plugins/" + id + f.Path})
		}
	}
	return out, nil
}

// checkFactors validates a SecondFactorRequired answer.
func checkFactors(r *pb.SecondFactorResponse) error {
	if !r.Required {
		return nil
	}
	if len(r.Factors) == 0 || len(r.Factors) > 8 {
		return fmt.Errorf("%w: required with %d factors (want 1–8)", errBadVerdict, len(r.Factors))
	}
	for _, f := range r.Factors {
		if !triggerRE.MatchString(f.Id) {
			return fmt.Errorf("%w: factor id %q: want 1–32 of a-z, 0-9, '-', '_'", errBadVerdict, f.Id)
		}
		if err := checkLabel("factor label", f.Label); err != nil {
			return fmt.Errorf("%w: %v", errBadVerdict, err)
		}
		if err := checkPluginPath("factor path", f.Path); err != nil {
			return fmt.Errorf("%w: %v", errBadVerdict, err)
		}
	}
	return nil
}

// identity returns the auth service or an Unavailable status.
func (a *hostAPI) identity() (*auth.Service, error) {
	if a.m.h.auth == nil || a.m.h.authz == nil || a.m.h.chat == nil {
		return nil, status.Error(codes.Unavailable, "accounts service not attached")
	}
	return a.m.h.auth, nil
}

func (a *hostAPI) RegisterLoginMethod(_ context.Context, r *pb.LoginMethod) (*pb.Empty, error) {
	if !triggerRE.MatchString(r.Id) {
		return nil, status.Errorf(codes.InvalidArgument, "login method id %q: use 1–32 of a-z, 0-9, '-', '_'", r.Id)
	}
	if err := checkLabel("login method label", r.Label); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := checkPluginPath("login method path", r.Path); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	lm := &pb.LoginMethod{Id: r.Id, Label: r.Label, Path: r.Path}
	if err := a.m.h.registerLoginMethod(a.m, lm); err != nil {
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	}
	a.m.log().Info("login method registered", "method", r.Id, "path", r.Path)
	return &pb.Empty{}, nil
}

func (a *hostAPI) ResolveIdentity(ctx context.Context, r *pb.ResolveIdentityRequest) (*pb.ResolveIdentityResponse, error) {
	svc, err := a.identity()
	if err != nil {
		return nil, err
	}
	if r.Identity == nil {
		return nil, status.Error(codes.InvalidArgument, "identity is required")
	}
	id := r.Identity
	res, err := svc.ResolveIdentity(ctx, auth.ResolveRequest{Create: r.Create, Link: r.Link, UpdateProfile: r.UpdateProfile,
		Identity: auth.ExternalIdentity{Issuer: id.Issuer, Subject: id.Subject, Username: id.Username, Email: id.Email,
			EmailVerified: id.EmailVerified, DisplayName: id.DisplayName}})
	if err != nil {
		return nil, grpcErr(err)
	}
	if res.Linked {
		a.m.securityEvent(secevent.IdentityLinked, res.User.ID, secevent.Success, map[string]string{"issuer": id.Issuer})
	}
	if res.Created {
		if err := a.m.h.authz.UserCreated(ctx, res.User); err != nil {
			return nil, grpcErr(err)
		}
		err = a.m.h.userLifecycle(ctx, pb.Hook_HOOK_USER_HAS_BEEN_CREATED, a.m, res.User, nil)
	} else if len(res.Changed) > 0 {
		err = a.m.h.userLifecycle(ctx, pb.Hook_HOOK_USER_HAS_BEEN_UPDATED, a.m, res.User, res.Changed)
	}
	if err != nil {
		return nil, grpcErr(err)
	}
	return &pb.ResolveIdentityResponse{User: userPB(res.User), Created: res.Created, Linked: res.Linked}, nil
}

func (a *hostAPI) IssueLogin(ctx context.Context, r *pb.IssueLoginRequest) (*pb.IssueLoginResponse, error) {
	svc, err := a.identity()
	if err != nil {
		return nil, err
	}
	if len(r.ClientAddr) > 64 {
		return nil, status.Errorf(codes.InvalidArgument, "client_addr is longer than 64 bytes")
	}
	l, err := svc.IssueLogin(ctx, auth.IssueRequest{UserID: r.UserId, Method: a.m.id, Device: r.Device, IP: r.ClientAddr, UserAgent: r.UserAgent})
	if err != nil {
		if ce := chat.AsError(err); ce.Code == protocol.CodeForbidden {
			return nil, status.Errorf(codes.FailedPrecondition, "login refused: %s", ce.Message)
		}
		return nil, grpcErr(err)
	}
	// The code travels to the console in the URL fragment, which browsers
	// never send to a server.
	return &pb.IssueLoginResponse{Code: l.Code, Redirect: "/#/login/code/" + l.Code, ExpiresAt: l.ExpiresAt}, nil
}

func challengePB(v auth.ChallengeView) *pb.LoginChallenge {
	return &pb.LoginChallenge{Challenge: v.Challenge, UserId: v.UserID, Username: v.Username, Confirmed: v.Confirmed, ExpiresAt: v.ExpiresAt}
}

func (a *hostAPI) GetLoginChallenge(ctx context.Context, r *pb.LoginChallengeRequest) (*pb.LoginChallenge, error) {
	svc, err := a.identity()
	if err != nil {
		return nil, err
	}
	v, err := svc.Challenge(ctx, r.Challenge, a.m.id)
	if err != nil {
		return nil, grpcErr(err)
	}
	return challengePB(v), nil
}

func (a *hostAPI) ConfirmSecondFactor(ctx context.Context, r *pb.ConfirmSecondFactorRequest) (*pb.LoginChallenge, error) {
	svc, err := a.identity()
	if err != nil {
		return nil, err
	}
	v, err := svc.ConfirmSecondFactor(ctx, r.Challenge, a.m.id, r.Factor, r.Ok)
	if err != nil {
		return nil, grpcErr(err)
	}
	return challengePB(v), nil
}

// userLifecycle announces that plugin m created, changed or deactivated an
// account, through the chat service as every other door does (rooms follow
// a deactivation; the hook fires once, and m is not told of its own
// change), and records it in the security event stream.
func (h *Host) userLifecycle(ctx context.Context, hook pb.Hook, m *managed, u store.User, changed []string) error {
	actor := authz.Plugin(m.id)
	switch hook {
	case pb.Hook_HOOK_USER_HAS_BEEN_CREATED:
		h.chat.UserCreated(u, actor)
		m.securityEvent(secevent.UserCreated, u.ID, secevent.Success, map[string]string{"username": u.Username, "via": "plugin"})
	case pb.Hook_HOOK_USER_HAS_BEEN_UPDATED:
		h.chat.UserUpdated(u, actor, changed...)
		// Reactivation is recorded by auth.SetActive itself.
		if !slices.Contains(changed, "active") {
			m.securityEvent(secevent.UserUpdated, u.ID, secevent.Success, map[string]string{"changed": strings.Join(changed, ",")})
		}
	case pb.Hook_HOOK_USER_HAS_BEEN_DEACTIVATED:
		// Deactivation is recorded by auth.SetActive itself.
		return h.chat.UserDeactivated(ctx, u, actor)
	}
	return nil
}

// securityEvent records an action of plugin m on a user in the security
// event stream (actor plugin:<id>; never a secret).
func (m *managed) securityEvent(t secevent.Type, user, outcome string, details map[string]string) {
	m.h.o.Events.Emit(m.ctx, secevent.Event{Type: t, Actor: authz.Plugin(m.id), Target: user, TargetKind: "user",
		Outcome: outcome, Details: details})
}
