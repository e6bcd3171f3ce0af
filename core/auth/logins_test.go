package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/store"
)

// factorHooks plays a factor plugin "otp" for users named mfa-…, or fails
// every login when down.
type factorHooks struct {
	down      bool
	loggedIn  []string
	challenge string // the last challenge id SecondFactorRequired saw
}

func (f *factorHooks) UserWillLogIn(context.Context, LoginEvent) error { return nil }

func (f *factorHooks) SecondFactorRequired(_ context.Context, e LoginEvent, challenge string) ([]Factor, error) {
	if f.down {
		return nil, errors.New("factor plugin down")
	}
	f.challenge = challenge
	if !strings.HasPrefix(e.User.Username, "mfa-") {
		return nil, nil
	}
	return []Factor{{Plugin: "otp", ID: "code", Label: "Code", URL: "/plugins/otp/mfa"}}, nil
}

func (f *factorHooks) UserHasLoggedIn(e LoginEvent) {
	f.loggedIn = append(f.loggedIn, e.User.Username+"/"+e.Method)
}

func register(t *testing.T, s *Service, name string) store.User {
	t.Helper()
	u, err := s.Register(context.Background(), RegisterRequest{Username: name, Password: "password-" + name})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func rows[T any](t *testing.T, s *Service, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.o.Store.DB.Model(new(T)).Where(where, args...).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// A one-time code is stored hashed, works once, and not after 60 s.
func TestLoginCodeOnceAndShortLived(t *testing.T) {
	hooks := &factorHooks{}
	s, clk := newService(t, Options{Hooks: hooks})
	ctx := context.Background()
	u := register(t, s, "erin")
	issue := func() string {
		l, err := s.IssueLogin(ctx, IssueRequest{UserID: u.ID, Method: "oidc", Device: "laptop"})
		if err != nil {
			t.Fatal(err)
		}
		return l.Code
	}
	code := issue()
	if rows[store.LoginCode](t, s, "hash = ?", code) != 0 || rows[store.LoginCode](t, s, "hash = ?", hashToken(code)) != 1 {
		t.Fatal("the one-time code is not stored as its hash")
	}
	// A bad device is refused before the code is spent.
	if _, err := s.ExchangeCode(ctx, code, DeviceSpec{ID: "not-a-device-of-erin"}, "", ""); !errors.As(err, new(*InputError)) {
		t.Fatalf("exchange with a foreign device: %v", err)
	}
	tok, err := s.ExchangeCode(ctx, code, DeviceSpec{}, "192.0.2.1", "ua")
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("exchange: %+v %v", tok, err)
	}
	if hooks.loggedIn[len(hooks.loggedIn)-1] != "erin/oidc" {
		t.Fatalf("UserHasLoggedIn %v", hooks.loggedIn)
	}
	if _, err := s.ExchangeCode(ctx, code, DeviceSpec{}, "", ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("second exchange: %v", err)
	}
	late := issue()
	clk.Add(CodeTTL + time.Second)
	if _, err := s.ExchangeCode(ctx, late, DeviceSpec{}, "", ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("exchange after %v: %v", CodeTTL, err)
	}
	// Deactivated accounts get no code; unknown ones neither.
	if _, err := s.SetActive(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IssueLogin(ctx, IssueRequest{UserID: u.ID, Method: "oidc"}); !errors.Is(err, ErrDeactivated) {
		t.Fatalf("IssueLogin of a deactivated account: %v", err)
	}
	if _, err := s.IssueLogin(ctx, IssueRequest{UserID: "nobody", Method: "oidc"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("IssueLogin of an unknown account: %v", err)
	}
}

// A login needing a second factor: no tokens until the offering plugin
// confirms; then once, with the secret; never after 5 minutes.
func TestSecondFactorChallenge(t *testing.T) {
	hooks := &factorHooks{}
	s, clk := newService(t, Options{Hooks: hooks})
	ctx := context.Background()
	register(t, s, "mfa-frank")
	login := func() *SecondFactorRequired {
		_, err := s.Login(ctx, LoginRequest{Login: "mfa-frank", Password: "password-mfa-frank"})
		var mfa *SecondFactorRequired
		if !errors.As(err, &mfa) || mfa.Challenge == "" || mfa.Secret == "" || len(mfa.Factors) != 1 || mfa.ExpiresIn != 300 {
			t.Fatalf("login of an mfa- user: %v", err)
		}
		if mfa.Challenge != hooks.challenge {
			t.Fatal("the hook saw another challenge id than the client got")
		}
		return mfa
	}
	mfa := login()
	if rows[store.LoginChallenge](t, s, "id = ? OR secret_hash = ?", mfa.Challenge, mfa.Secret) != 0 {
		t.Fatal("the challenge or its secret is stored in clear")
	}
	if _, err := s.CompleteSecondFactor(ctx, mfa.Challenge, mfa.Secret, "", ""); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("complete before confirmation: %v", err)
	}
	if _, err := s.Challenge(ctx, mfa.Challenge, "other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another plugin reads the challenge: %v", err)
	}
	if _, err := s.ConfirmSecondFactor(ctx, mfa.Challenge, "other", "code", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another plugin confirms the challenge: %v", err)
	}
	v, err := s.ConfirmSecondFactor(ctx, mfa.Challenge, "otp", "code", true)
	if err != nil || !v.Confirmed || v.Username != "mfa-frank" {
		t.Fatalf("confirm: %+v %v", v, err)
	}
	if _, err := s.CompleteSecondFactor(ctx, mfa.Challenge, "wrong", "", ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("complete with a wrong secret: %v", err)
	}
	if tok, err := s.CompleteSecondFactor(ctx, mfa.Challenge, mfa.Secret, "", ""); err != nil || tok.RefreshToken == "" {
		t.Fatalf("complete: %+v %v", tok, err)
	}
	if _, err := s.CompleteSecondFactor(ctx, mfa.Challenge, mfa.Secret, "", ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("second completion: %v", err)
	}
	late := login()
	if _, err := s.ConfirmSecondFactor(ctx, late.Challenge, "otp", "code", true); err != nil {
		t.Fatal(err)
	}
	clk.Add(ChallengeTTL + time.Second)
	if _, err := s.CompleteSecondFactor(ctx, late.Challenge, late.Secret, "", ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("complete after %v: %v", ChallengeTTL, err)
	}
	// A factor plugin that fails refuses the login.
	hooks.down = true
	if _, err := s.Login(ctx, LoginRequest{Login: "mfa-frank", Password: "password-mfa-frank"}); err == nil || errors.As(err, new(*SecondFactorRequired)) {
		t.Fatalf("login with the factor plugin down: %v", err)
	}
}

// Failed factor attempts and failed passwords count toward one lockout, and
// a right password does not forgive failures while a factor is pending.
func TestSecondFactorLockout(t *testing.T) {
	s, _ := newService(t, Options{Hooks: &factorHooks{}, Lockout: LockoutOptions{Threshold: 3}})
	ctx := context.Background()
	register(t, s, "mfa-gina")
	if _, err := s.Login(ctx, LoginRequest{Login: "mfa-gina", Password: "wrong-password"}); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatal(err)
	}
	_, err := s.Login(ctx, LoginRequest{Login: "mfa-gina", Password: "password-mfa-gina"})
	var mfa *SecondFactorRequired
	if !errors.As(err, &mfa) {
		t.Fatal(err)
	}
	if _, err := s.ConfirmSecondFactor(ctx, mfa.Challenge, "otp", "code", false); err != nil {
		t.Fatalf("first failed factor: %v", err)
	}
	// Third failure (1 password + 2 factors) locks and ends the challenge.
	if _, err := s.ConfirmSecondFactor(ctx, mfa.Challenge, "otp", "code", false); !errors.As(err, new(*LockedError)) {
		t.Fatalf("locking failure: %v", err)
	}
	if _, err := s.ConfirmSecondFactor(ctx, mfa.Challenge, "otp", "code", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("confirm after the lock: %v", err)
	}
	if _, err := s.Login(ctx, LoginRequest{Login: "mfa-gina", Password: "password-mfa-gina"}); !errors.As(err, new(*LockedError)) {
		t.Fatalf("password login while locked: %v", err)
	}
}

func TestUsernameFromClaims(t *testing.T) {
	for _, c := range []struct {
		id   ExternalIdentity
		want string
	}{
		{ExternalIdentity{Username: "Alice Smith"}, "alice-smith"},
		{ExternalIdentity{Username: "x", Email: "Bob.Jones+chat@Corp.example"}, "bob.jones-chat"},
		{ExternalIdentity{Username: "__ok__"}, "ok__"},
		{ExternalIdentity{Username: strings.Repeat("long", 20)}, strings.Repeat("long", 8)},
	} {
		if got := usernameFrom(c.id); got != c.want {
			t.Errorf("usernameFrom(%+v) = %q, want %q", c.id, got, c.want)
		}
	}
	got := usernameFrom(ExternalIdentity{Issuer: "i", Subject: "s", Username: "ééé"})
	if !strings.HasPrefix(got, "user-") || !usernameRE.MatchString(got) {
		t.Errorf("fallback username %q", got)
	}
}

// Only a verified email is stored or linked by.
func TestResolveIdentityEmails(t *testing.T) {
	s, _ := newService(t, Options{})
	ctx := context.Background()
	victim, err := s.Register(ctx, RegisterRequest{Username: "victim", Password: "password-victim", Email: "v@corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	unverified := ExternalIdentity{Issuer: "https://idp", Subject: "a", Username: "attacker", Email: "v@corp.example"}
	if _, err := s.ResolveIdentity(ctx, ResolveRequest{Identity: unverified, Link: LinkEmail}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("link by an unverified email: %v", err)
	}
	r, err := s.ResolveIdentity(ctx, ResolveRequest{Identity: ExternalIdentity{Issuer: "https://idp", Subject: "b",
		Username: "newbie", Email: "new@corp.example"}, Create: true})
	if err != nil || r.User.Email != nil {
		t.Fatalf("JIT with an unverified email: %+v %v", r.User, err)
	}
	verified := unverified
	verified.Subject, verified.EmailVerified = "c", true
	r, err = s.ResolveIdentity(ctx, ResolveRequest{Identity: verified, Link: LinkEmail})
	if err != nil || !r.Linked || r.User.ID != victim.ID {
		t.Fatalf("link by a verified email: %+v %v", r, err)
	}
}
