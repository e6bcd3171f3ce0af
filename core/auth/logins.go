package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
)

// Logins that do not end in tokens at once: second-factor challenges and
// the one-time codes identity plugins hand to the console. Neither a code,
// a challenge id nor a challenge secret is ever stored or logged in clear:
// rows hold their SHA-256.
const (
	// ChallengeTTL is how long a login waits for its second factor.
	ChallengeTTL = 5 * time.Minute
	// CodeTTL is how long an identity plugin's one-time code is valid.
	CodeTTL = 60 * time.Second
)

// SecondFactorRequired is the answer to a login whose first factor passed
// but which needs a second one: the client shows Factors; a factor plugin
// confirms Challenge (Host.ConfirmSecondFactor); then the client completes
// the login with Challenge and Secret (CompleteSecondFactor). Challenge may
// travel in URLs (the factor pages get it as ?challenge=…); Secret never
// leaves the client, so a leaked challenge id alone is worth nothing.
type SecondFactorRequired struct {
	Challenge string   `json:"challenge"`
	Secret    string   `json:"secret"`
	Factors   []Factor `json:"factors"`
	ExpiresIn int64    `json:"expires_in"` // seconds
}

func (e *SecondFactorRequired) Error() string {
	return "a second factor is required to complete this login"
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// derived is a value derived one-way from a one-time code (its challenge id
// and secret), so that a code's challenge can be handed out at exchange
// without storing it in clear.
func derived(code, purpose string) string {
	h := sha256.Sum256([]byte(purpose + ":" + code))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// admit finishes a login whose first factor passed: plugins may refuse it
// (UserWillLogIn) or ask for a second factor, in which case it returns a
// *SecondFactorRequired; otherwise the session opens.
func (s *Service) admit(ctx context.Context, u store.User, req LoginRequest, method string) (Tokens, error) {
	// A bad device is refused now, not after the second factor was passed.
	if err := s.checkDevice(ctx, u.ID, &req.Device); err != nil {
		return Tokens{}, err
	}
	ev := LoginEvent{User: u, Device: req.Device.Name, Method: method, IP: req.IP, UserAgent: req.UserAgent}
	challenge, secret := randomToken(), randomToken()
	factors, err := s.checkLogin(ctx, ev, challenge)
	if err != nil {
		return Tokens{}, err
	}
	if len(factors) > 0 {
		row, err := s.challengeRow(ev, challenge, secret, factors, req.Device)
		if err != nil {
			return Tokens{}, err
		}
		if err := s.o.Store.DB.WithContext(ctx).Create(&row).Error; err != nil {
			return Tokens{}, fmt.Errorf("store login challenge: %w", err)
		}
		_ = s.o.Store.SweepLogins(ctx, s.o.Now().Add(-time.Hour).UnixMilli())
		s.securityEvent(ctx, "login.second_factor_required", u.ID, req.IP, "pending", "method", method, "factors", len(factors))
		return Tokens{}, &SecondFactorRequired{Challenge: challenge, Secret: secret, Factors: factors, ExpiresIn: int64(ChallengeTTL / time.Second)}
	}
	return s.finishLogin(ctx, u, req, method)
}

// checkLogin runs UserWillLogIn and SecondFactorRequired for a login.
func (s *Service) checkLogin(ctx context.Context, ev LoginEvent, challenge string) ([]Factor, error) {
	if s.o.Hooks == nil {
		return nil, nil
	}
	if err := s.o.Hooks.UserWillLogIn(ctx, ev); err != nil {
		s.o.Logger.Info("login refused by a plugin", "user", ev.User.ID, "method", ev.Method, "ip", ev.IP, "err", err)
		return nil, err
	}
	factors, err := s.o.Hooks.SecondFactorRequired(ctx, ev, challenge)
	if err != nil {
		s.o.Logger.Warn("login refused: second-factor check failed", "user", ev.User.ID, "method", ev.Method, "ip", ev.IP, "err", err)
		return nil, err
	}
	return factors, nil
}

func (s *Service) challengeRow(ev LoginEvent, challenge, secret string, factors []Factor, dev DeviceSpec) (store.LoginChallenge, error) {
	fs, err := json.Marshal(factors)
	if err != nil {
		return store.LoginChallenge{}, err
	}
	ds, err := json.Marshal(dev)
	if err != nil {
		return store.LoginChallenge{}, err
	}
	now := s.o.Now().UnixMilli()
	return store.LoginChallenge{ID: hashToken(challenge), SecretHash: hashToken(secret), UserID: ev.User.ID, Method: ev.Method,
		Factors: string(fs), Device: string(ds), IP: ev.IP, UserAgent: truncate(ev.UserAgent, 256),
		CreatedAt: now, ExpiresAt: now + ChallengeTTL.Milliseconds()}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// finishLogin opens the session of a login that passed every check.
func (s *Service) finishLogin(ctx context.Context, u store.User, req LoginRequest, method string) (Tokens, error) {
	t, err := s.openSession(ctx, u, req)
	if err != nil {
		return Tokens{}, err
	}
	s.lock.succeed("acct:" + u.ID)
	s.o.Logger.Info("login", "user", u.ID, "method", method, "session", t.SessionID, "device", t.DeviceID, "ip", req.IP)
	s.o.Events.Emit(ctx, secevent.Event{Type: secevent.LoginSucceeded, Actor: u.ID, Target: u.ID, TargetKind: "user",
		ClientAddr: req.IP, UserAgent: req.UserAgent, Outcome: secevent.Success,
		Details: map[string]string{"username": u.Username, "session": t.SessionID, "device": t.DeviceID, "method": method}})
	if s.o.Hooks != nil {
		s.o.Hooks.UserHasLoggedIn(LoginEvent{User: u, Device: req.Device.Name, Method: method, IP: req.IP, UserAgent: req.UserAgent})
	}
	return t, nil
}

// securityEvent records an auditable login step in the security event
// stream: kind, user (actor and target), client address, outcome and
// attributes as details (never a secret). Outcomes other than failure count
// as success: a pending challenge is a step that succeeded.
func (s *Service) securityEvent(ctx context.Context, kind, user, ip, outcome string, attrs ...any) {
	details := map[string]string{}
	for i := 0; i+1 < len(attrs); i += 2 {
		details[fmt.Sprint(attrs[i])] = fmt.Sprint(attrs[i+1])
	}
	switch outcome {
	case "failure", "invalid":
		outcome = secevent.Failure
	default:
		if outcome != "success" {
			details["step"] = outcome
		}
		outcome = secevent.Success
	}
	s.o.Events.Emit(ctx, secevent.Event{Type: secevent.Type(kind), Actor: user, Target: user, TargetKind: "user",
		ClientAddr: ip, Outcome: outcome, Details: details})
}

// IssueRequest is a login an identity plugin authenticated.
type IssueRequest struct {
	UserID string
	// Method is the identity plugin's id.
	Method    string
	Device    string // device name
	IP        string
	UserAgent string
}

// IssuedLogin is a one-time code for the console.
type IssuedLogin struct {
	Code      string
	ExpiresAt int64 // unix ms
}

// IssueLogin starts a login for a user an identity plugin authenticated: it
// runs UserWillLogIn and SecondFactorRequired as a password login does and
// returns a one-time code (valid CodeTTL) that ExchangeCode turns into
// tokens, or into the login's second-factor challenge.
func (s *Service) IssueLogin(ctx context.Context, req IssueRequest) (IssuedLogin, error) {
	u, err := s.o.Store.UserByID(ctx, req.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Role == "bot") {
		return IssuedLogin{}, fmt.Errorf("user %q: %w", req.UserID, ErrNotFound)
	}
	if err != nil {
		return IssuedLogin{}, err
	}
	if u.DeactivatedAt != 0 {
		return IssuedLogin{}, fmt.Errorf("user %q: %w", req.UserID, ErrDeactivated)
	}
	dev := DeviceSpec{Name: req.Device}
	if err := dev.check(); err != nil {
		return IssuedLogin{}, err
	}
	code := randomToken()
	ev := LoginEvent{User: u, Device: dev.Name, Method: req.Method, IP: req.IP, UserAgent: req.UserAgent}
	factors, err := s.checkLogin(ctx, ev, derived(code, "challenge"))
	if err != nil {
		return IssuedLogin{}, err
	}
	now := s.o.Now()
	row := store.LoginCode{Hash: hashToken(code), UserID: u.ID, Method: req.Method, Device: dev.Name, IP: req.IP,
		UserAgent: truncate(req.UserAgent, 256), CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(CodeTTL).UnixMilli()}
	err = s.o.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if len(factors) > 0 {
			ch, err := s.challengeRow(ev, derived(code, "challenge"), derived(code, "secret"), factors, dev)
			if err != nil {
				return err
			}
			if err := tx.Create(&ch).Error; err != nil {
				return err
			}
			row.Challenge = ch.ID
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return IssuedLogin{}, fmt.Errorf("store login code: %w", err)
	}
	_ = s.o.Store.SweepLogins(ctx, now.Add(-time.Hour).UnixMilli())
	s.securityEvent(ctx, "login.code_issued", u.ID, req.IP, "pending", "method", req.Method, "second_factor", len(factors) > 0)
	return IssuedLogin{Code: code, ExpiresAt: row.ExpiresAt}, nil
}

// ExchangeCode redeems a one-time code (once): tokens for a session on dev
// (a new device named as IssueLogin said when dev is empty), or a
// *SecondFactorRequired when the login waits for a second factor. ip and
// userAgent are the exchanging client's.
func (s *Service) ExchangeCode(ctx context.Context, code string, dev DeviceSpec, ip, userAgent string) (Tokens, error) {
	if code == "" {
		return Tokens{}, ErrInvalidToken
	}
	now := s.o.Now().UnixMilli()
	db := s.o.Store.DB.WithContext(ctx)
	var row store.LoginCode
	if err := db.Where("hash = ? AND used_at = 0 AND expires_at > ?", hashToken(code), now).Take(&row).Error; err != nil {
		s.securityEvent(ctx, "login.code_exchanged", "", ip, "invalid")
		return Tokens{}, ErrInvalidToken
	}
	if dev.ID == "" && dev.Name == "" {
		dev.Name = row.Device
	}
	// A bad device is refused before the code is spent.
	if err := s.checkDevice(ctx, row.UserID, &dev); err != nil {
		return Tokens{}, err
	}
	r := db.Model(&store.LoginCode{}).Where("hash = ? AND used_at = 0 AND expires_at > ?", hashToken(code), now).Update("used_at", now)
	if r.Error != nil {
		return Tokens{}, r.Error
	}
	if r.RowsAffected != 1 {
		s.securityEvent(ctx, "login.code_exchanged", "", ip, "invalid")
		return Tokens{}, ErrInvalidToken
	}
	u, err := s.o.Store.UserByID(ctx, row.UserID)
	if err != nil || u.DeactivatedAt != 0 {
		return Tokens{}, ErrInvalidToken
	}
	if row.Challenge != "" {
		var ch store.LoginChallenge
		if err := db.Where("id = ? AND used_at = 0 AND expires_at > ?", row.Challenge, now).Take(&ch).Error; err != nil {
			return Tokens{}, ErrInvalidToken
		}
		ds, _ := json.Marshal(dev)
		if err := db.Model(&store.LoginChallenge{}).Where("id = ?", ch.ID).Update("device", string(ds)).Error; err != nil {
			return Tokens{}, err
		}
		var factors []Factor
		if err := json.Unmarshal([]byte(ch.Factors), &factors); err != nil {
			return Tokens{}, fmt.Errorf("login challenge of %s: factors: %w", u.ID, err)
		}
		s.securityEvent(ctx, "login.code_exchanged", u.ID, ip, "second_factor_required", "method", row.Method)
		return Tokens{}, &SecondFactorRequired{Challenge: derived(code, "challenge"), Secret: derived(code, "secret"),
			Factors: factors, ExpiresIn: max(1, (ch.ExpiresAt-now)/1000)}
	}
	s.securityEvent(ctx, "login.code_exchanged", u.ID, ip, "success", "method", row.Method)
	return s.finishLogin(ctx, u, LoginRequest{Device: dev, IP: ip, UserAgent: userAgent}, row.Method)
}

// ChallengeView is a pending login as a factor plugin sees it.
type ChallengeView struct {
	Challenge string
	UserID    string
	Username  string
	Confirmed bool
	ExpiresAt int64 // unix ms
}

// pendingChallenge loads a live (unexpired, unused) challenge offered to
// plugin; anything else is ErrNotFound, so a plugin learns nothing about
// other plugins' challenges.
func (s *Service) pendingChallenge(ctx context.Context, challenge, plugin string) (store.LoginChallenge, []Factor, error) {
	var ch store.LoginChallenge
	notFound := fmt.Errorf("login challenge: %w (expired, used or unknown)", ErrNotFound)
	if challenge == "" {
		return ch, nil, notFound
	}
	err := s.o.Store.DB.WithContext(ctx).Where("id = ? AND used_at = 0 AND expires_at > ?", hashToken(challenge), s.o.Now().UnixMilli()).Take(&ch).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ch, nil, notFound
	}
	if err != nil {
		return ch, nil, err
	}
	var factors, mine []Factor
	if err := json.Unmarshal([]byte(ch.Factors), &factors); err != nil {
		return ch, nil, fmt.Errorf("login challenge of %s: factors: %w", ch.UserID, err)
	}
	for _, f := range factors {
		if plugin == "" || f.Plugin == plugin {
			mine = append(mine, f)
		}
	}
	if len(mine) == 0 {
		return ch, nil, notFound
	}
	return ch, mine, nil
}

func (s *Service) challengeView(ctx context.Context, challenge string, ch store.LoginChallenge) (ChallengeView, error) {
	u, err := s.o.Store.UserByID(ctx, ch.UserID)
	if err != nil {
		return ChallengeView{}, err
	}
	return ChallengeView{Challenge: challenge, UserID: u.ID, Username: u.Username, Confirmed: ch.ConfirmedAt != 0, ExpiresAt: ch.ExpiresAt}, nil
}

// Challenge returns a pending login challenge offered to plugin.
func (s *Service) Challenge(ctx context.Context, challenge, plugin string) (ChallengeView, error) {
	ch, _, err := s.pendingChallenge(ctx, challenge, plugin)
	if err != nil {
		return ChallengeView{}, err
	}
	return s.challengeView(ctx, challenge, ch)
}

// ConfirmSecondFactor records plugin's verdict on a challenge it offered
// factor for. A failure counts toward the account's lockout like a wrong
// password; the failure that locks the account also ends the challenge
// (*LockedError). While the account is locked nothing is confirmed.
func (s *Service) ConfirmSecondFactor(ctx context.Context, challenge, plugin, factor string, ok bool) (ChallengeView, error) {
	ch, mine, err := s.pendingChallenge(ctx, challenge, plugin)
	if err != nil {
		return ChallengeView{}, err
	}
	offered := false
	for _, f := range mine {
		offered = offered || f.ID == factor
	}
	if !offered {
		return ChallengeView{}, &InputError{fmt.Sprintf("factor %q was not offered by plugin %s for this login", factor, plugin)}
	}
	now := s.o.Now()
	acctKey := "acct:" + ch.UserID
	if d := s.lock.check(acctKey, now); d > 0 {
		return ChallengeView{}, &LockedError{RetryAfter: d}
	}
	db := s.o.Store.DB.WithContext(ctx)
	if !ok {
		d := s.lock.fail(acctKey, s.lock.o.Threshold, now)
		s.securityEvent(ctx, "login.second_factor", ch.UserID, ch.IP, "failure", "plugin", plugin, "factor", factor, "locked_for", d)
		if d > 0 {
			if err := db.Model(&store.LoginChallenge{}).Where("id = ?", ch.ID).Update("used_at", now.UnixMilli()).Error; err != nil {
				return ChallengeView{}, err
			}
			return ChallengeView{}, &LockedError{RetryAfter: d}
		}
		return s.challengeView(ctx, challenge, ch)
	}
	r := db.Model(&store.LoginChallenge{}).Where("id = ? AND used_at = 0", ch.ID).
		Updates(map[string]any{"confirmed_at": now.UnixMilli(), "confirmed_by": plugin, "factor": factor})
	if r.Error != nil {
		return ChallengeView{}, r.Error
	}
	if r.RowsAffected != 1 {
		return ChallengeView{}, fmt.Errorf("login challenge: %w (expired, used or unknown)", ErrNotFound)
	}
	ch.ConfirmedAt = now.UnixMilli()
	s.securityEvent(ctx, "login.second_factor", ch.UserID, ch.IP, "success", "plugin", plugin, "factor", factor)
	return s.challengeView(ctx, challenge, ch)
}

// CompleteSecondFactor turns a confirmed challenge into tokens, once. The
// secret is the one handed to the client with the challenge; ip and
// userAgent are the completing client's.
func (s *Service) CompleteSecondFactor(ctx context.Context, challenge, secret, ip, userAgent string) (Tokens, error) {
	ch, _, err := s.pendingChallenge(ctx, challenge, "")
	if err != nil || secret == "" || subtle.ConstantTimeCompare([]byte(hashToken(secret)), []byte(ch.SecretHash)) != 1 {
		return Tokens{}, ErrInvalidToken
	}
	if d := s.lock.check("acct:"+ch.UserID, s.o.Now()); d > 0 {
		return Tokens{}, &LockedError{RetryAfter: d}
	}
	if ch.ConfirmedAt == 0 {
		return Tokens{}, ErrNotConfirmed
	}
	r := s.o.Store.DB.WithContext(ctx).Model(&store.LoginChallenge{}).Where("id = ? AND used_at = 0", ch.ID).Update("used_at", s.o.Now().UnixMilli())
	if r.Error != nil {
		return Tokens{}, r.Error
	}
	if r.RowsAffected != 1 {
		return Tokens{}, ErrInvalidToken
	}
	u, err := s.o.Store.UserByID(ctx, ch.UserID)
	if err != nil || u.DeactivatedAt != 0 {
		return Tokens{}, ErrInvalidToken
	}
	var dev DeviceSpec
	if err := json.Unmarshal([]byte(ch.Device), &dev); err != nil {
		return Tokens{}, fmt.Errorf("login challenge of %s: device: %w", u.ID, err)
	}
	s.securityEvent(ctx, "login.second_factor_completed", u.ID, ip, "success", "method", ch.Method, "plugin", ch.ConfirmedBy)
	return s.finishLogin(ctx, u, LoginRequest{Device: dev, IP: ip, UserAgent: userAgent}, ch.Method)
}
