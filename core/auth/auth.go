// Package auth owns the front door: accounts (registration policy, invites,
// argon2id passwords, lockout), access tokens (EdDSA or RS256 JWTs with kid,
// published as JWKS, keys rotated on a schedule), sessions (server-side
// refresh tokens that rotate with reuse detection, each bound to a device)
// and revocation (an in-memory set checked on every token, kept in step with
// the database, with listeners that close live WebSockets).
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
)

// Identity is who a verified bearer is. The gateway and the REST API ask an
// Authenticator for it and never look inside tokens themselves.
type Identity struct {
	UserID    string
	Username  string
	Role      string // global role: superadmin or member
	SessionID string // the session (refresh-token family) the token belongs to
	DeviceID  string // the device that session is bound to
}

// BearerToken reads an Authorization header value "Bearer <token>"
// (scheme case-insensitive); ok is false for anything else.
func BearerToken(header string) (token string, ok bool) {
	if len(header) < 8 || !strings.EqualFold(header[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(header[7:]), true
}

// Authenticator turns a bearer token into an Identity.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// Errors callers map to protocol codes.
var (
	ErrInvalidCredentials = errors.New("invalid username or password")
	ErrInvalidToken       = errors.New("invalid or expired token")
	ErrTaken              = errors.New("username or email already taken")
	ErrRegistrationClosed = errors.New("registration is closed")
	ErrInviteRequired     = errors.New("registration needs a valid invite")
	ErrWrongPassword      = errors.New("current password is wrong")
	ErrNotFound           = errors.New("not found")
	ErrDeactivated        = errors.New("account is deactivated")
	ErrNotConfirmed       = errors.New("the second factor has not been confirmed for this login yet")
)

// InputError is a rejected registration or password field.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// LockedError is a login refused by lockout or throttling. It says when to
// retry and nothing about whether the account exists.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return "too many failed login attempts; retry in " + strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10) + "s"
}

// Registration policies.
const (
	RegistrationOpen   = "open"
	RegistrationInvite = "invite"
	RegistrationClosed = "closed"
)

// Options configures the Service. Zero values pick the documented defaults.
type Options struct {
	Store *store.Store
	// DataDir holds the keys in DataDir/keys unless KeysDir is set.
	DataDir string
	KeysDir string
	// Alg is the signing algorithm of new keys: EdDSA (default) or RS256.
	Alg string
	// AccessTTL is the lifetime of access tokens (default 15m).
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of a session's refresh token (default 30 days).
	RefreshTTL time.Duration
	Argon2     Argon2Params
	// Registration is open (default), invite or closed.
	Registration string
	// Issuer is the JWT iss claim (default "unhidra").
	Issuer string
	// KeyRotation creates a new signing key when the newest is this old
	// (0: only `unhidra keys rotate`).
	KeyRotation time.Duration
	// KeyPublishLead is how long a new key is published in the JWKS before it
	// signs (default 10m: longer than the JWKS cache time of 5m).
	KeyPublishLead time.Duration
	// KeyCheckInterval is how often the key directory is re-read, so keys
	// added by `unhidra keys rotate` are picked up (default 30s).
	KeyCheckInterval time.Duration
	// RevocationPoll is how often revocations made by other nodes are read
	// from the database (default 500ms, so a revocation closes sockets on
	// every node within about a second; one indexed query per poll).
	RevocationPoll time.Duration
	Lockout        LockoutOptions
	Logger         *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
	// Hooks, when set, lets plugins refuse, observe and add a second factor
	// to logins.
	Hooks LoginHooks
	// MaxSessions caps a user's active sessions: a login over it ends the
	// least recently used ones (revoke reason session_limit). 0: no cap.
	MaxSessions int
	// Events receives the security events of logins, tokens, sessions,
	// devices and accounts (nil: none).
	Events *secevent.Outbox
}

// LoginHooks is the plugin host's seam into logins. UserWillLogIn runs after
// the first factor (a password, or an identity plugin's IssueLogin) and
// before anything else; its error (shown to the caller) refuses the login.
// SecondFactorRequired then returns the factors the user must pass first
// (none: tokens are issued at once); its error refuses the login.
// UserHasLoggedIn runs after tokens were issued and must not block.
type LoginHooks interface {
	UserWillLogIn(ctx context.Context, e LoginEvent) error
	SecondFactorRequired(ctx context.Context, e LoginEvent, challenge string) ([]Factor, error)
	UserHasLoggedIn(e LoginEvent)
}

// MethodPassword is LoginEvent.Method of a password login.
const MethodPassword = "password"

// LoginEvent is a login whose first factor passed.
type LoginEvent struct {
	User   store.User
	Device string // the device name the login asked for
	// Method proved the first factor: MethodPassword or the id of the
	// identity plugin that issued the login.
	Method    string
	IP        string
	UserAgent string
}

// Factor is one way to pass a login's second factor, offered by a factor
// plugin: the console opens URL (under /plugins/{plugin}/) with the
// challenge id appended as ?challenge=….
type Factor struct {
	Plugin string `json:"plugin"`
	ID     string `json:"id"`
	Label  string `json:"label"`
	URL    string `json:"url"`
}

// leeway is the clock skew tolerated on exp/nbf/iat.
const leeway = 5 * time.Second

// Revocation is a session that was revoked.
type Revocation struct {
	SessionID string
	UserID    string
}

// Service implements accounts, sessions and tokens.
type Service struct {
	o      Options
	ring   atomic.Pointer[keyRing]
	keyMu  sync.Mutex // serializes key reloads and rotation
	parser *jwt.Parser
	lock   *lockout

	revMu    sync.RWMutex
	revoked  map[string]int64 // session id → unix ms after which no token of it can be valid
	revSince int64            // newest revoked_at read from the database

	lisMu     sync.Mutex
	listeners []func([]Revocation)

	seenMu sync.Mutex
	seen   map[string]time.Time // device id → last last_seen_at write

	lastKidReload atomic.Int64 // unix ns of the last reload an unknown kid caused
}

// Tokens is the login/refresh response body.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
	SessionID    string `json:"session_id"`
	DeviceID     string `json:"device_id"`
}

// New loads the signing keys (creating the first one), loads the revocation
// set and returns the service. Call Run to keep both current.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("auth: Store is required")
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = 15 * time.Minute
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = 30 * 24 * time.Hour
	}
	if o.Argon2 == (Argon2Params{}) {
		o.Argon2 = DefaultArgon2
	}
	if o.Argon2.Time == 0 || o.Argon2.Memory < 8*uint32(o.Argon2.Threads) || o.Argon2.Threads == 0 {
		return nil, fmt.Errorf("auth: argon2 parameters %+v: time, memory (KiB, ≥ 8×threads) and threads must be positive", o.Argon2)
	}
	switch o.Registration {
	case "":
		o.Registration = RegistrationOpen
	case RegistrationOpen, RegistrationInvite, RegistrationClosed:
	default:
		return nil, fmt.Errorf("auth: registration %q: want open, invite or closed", o.Registration)
	}
	if o.Alg == "" {
		o.Alg = AlgEdDSA
	}
	if _, err := methodFor(o.Alg); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if o.Issuer == "" {
		o.Issuer = "unhidra"
	}
	if o.KeysDir == "" {
		o.KeysDir = filepath.Join(o.DataDir, "keys")
	}
	if o.KeyPublishLead < 0 {
		return nil, fmt.Errorf("auth: key publish lead %v is negative", o.KeyPublishLead)
	}
	if o.KeyPublishLead == 0 {
		o.KeyPublishLead = 10 * time.Minute
	}
	if o.KeyCheckInterval <= 0 {
		o.KeyCheckInterval = 30 * time.Second
	}
	if o.RevocationPoll <= 0 {
		o.RevocationPoll = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{o: o, lock: newLockout(o.Lockout), revoked: map[string]int64{}, seen: map[string]time.Time{}}
	// The keyfunc checks each token's alg against its key, so no
	// WithValidMethods: that would hide "wrong alg" behind "bad signature".
	s.parser = jwt.NewParser(jwt.WithIssuer(o.Issuer), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway), jwt.WithTimeFunc(o.Now))
	if err := s.reloadKeys(true); err != nil {
		return nil, err
	}
	if err := s.pollRevocations(ctx); err != nil {
		return nil, fmt.Errorf("auth: load revoked sessions: %w", err)
	}
	return s, nil
}

// Run keeps keys and revocations current until ctx ends: it re-reads the key
// directory (and rotates on schedule) every KeyCheckInterval and reads
// revocations made by other nodes every RevocationPoll.
func (s *Service) Run(ctx context.Context) {
	kt := time.NewTicker(s.o.KeyCheckInterval)
	defer kt.Stop()
	rt := time.NewTicker(s.o.RevocationPoll)
	defer rt.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kt.C:
			if err := s.MaintainKeys(); err != nil {
				s.o.Logger.Error("signing keys", "err", err)
			}
		case <-rt.C:
			if err := s.pollRevocations(ctx); err != nil && ctx.Err() == nil {
				s.o.Logger.Warn("read revocations", "err", err)
			}
		}
	}
}

// AccessTTL returns the access-token lifetime.
func (s *Service) AccessTTL() time.Duration { return s.o.AccessTTL }

// Registration returns the registration policy.
func (s *Service) Registration() string { return s.o.Registration }

// reloadKeys reads the key directory, makes sure a key of the configured
// algorithm signs (creating one on first start), and deletes keys whose last
// token has expired.
func (s *Service) reloadKeys(startup bool) error {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	now := s.o.Now()
	ks, err := loadKeys(s.o.KeysDir)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	ring, retire := buildRing(ks, s.o.Alg, now, s.o.AccessTTL+leeway)
	if ring.signer == nil {
		if !startup && s.ring.Load() != nil {
			return fmt.Errorf("auth: no active %s key in %s", s.o.Alg, s.o.KeysDir)
		}
		m, err := GenerateKey(s.o.KeysDir, s.o.Alg, s.o.Now, 0)
		if err != nil {
			return fmt.Errorf("auth: %w", err)
		}
		s.o.Logger.Info("created signing key", "kid", m.Kid, "alg", m.Alg, "dir", s.o.KeysDir)
		if ks, err = loadKeys(s.o.KeysDir); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
		now = m.ActivatesAt // generation took time; the new key is active from here
		ring, retire = buildRing(ks, s.o.Alg, now, s.o.AccessTTL+leeway)
		if ring.signer == nil {
			return fmt.Errorf("auth: created key %s but it does not sign", m.Kid)
		}
	}
	for _, k := range retire {
		if err := removeKey(k.path); err != nil {
			s.o.Logger.Warn("delete retired signing key", "kid", k.Kid, "err", err)
			continue
		}
		s.o.Logger.Info("deleted retired signing key", "kid", k.Kid)
	}
	if old := s.ring.Load(); old != nil && old.signer.Kid != ring.signer.Kid {
		s.o.Logger.Info("signing with new key", "kid", ring.signer.Kid, "previous", old.signer.Kid)
	}
	s.ring.Store(ring)
	return nil
}

// MaintainKeys re-reads the key directory and, when KeyRotation is set and
// the newest key is that old, rotates.
func (s *Service) MaintainKeys() error {
	if err := s.reloadKeys(false); err != nil {
		return err
	}
	if s.o.KeyRotation <= 0 {
		return nil
	}
	var newest time.Time
	for _, k := range s.ring.Load().all {
		if k.Alg == s.o.Alg && k.CreatedAt.After(newest) {
			newest = k.CreatedAt
		}
	}
	if s.o.Now().Sub(newest) < s.o.KeyRotation {
		return nil
	}
	_, err := s.RotateKeys(secevent.WithActor(context.Background(), secevent.System))
	return err
}

// RotateKeys creates the next signing key: published at once, signing after
// KeyPublishLead. The current key keeps verifying until its last token
// expires.
func (s *Service) RotateKeys(ctx context.Context) (KeyMeta, error) {
	m, err := GenerateKey(s.o.KeysDir, s.o.Alg, s.o.Now, s.o.KeyPublishLead)
	if err != nil {
		return KeyMeta{}, fmt.Errorf("auth: %w", err)
	}
	s.o.Logger.Info("rotated signing key", "kid", m.Kid, "alg", m.Alg, "signs_from", m.ActivatesAt)
	s.o.Events.Emit(ctx, secevent.Event{Type: secevent.KeysRotated, Target: m.Kid, TargetKind: "key", Outcome: secevent.Success,
		Details: map[string]string{"kid": m.Kid, "alg": m.Alg}})
	return m, s.reloadKeys(false)
}

// ReloadKeys re-reads the key directory now (instead of at the next check).
func (s *Service) ReloadKeys() error { return s.reloadKeys(false) }

// JWKS returns the public keys as a JSON Web Key Set: the next key (if one
// is pending), the current one, and earlier ones whose tokens may be alive.
func (s *Service) JWKS() []byte { return s.ring.Load().jwks }

// SigningKey returns the kid and alg that sign now.
func (s *Service) SigningKey() (kid, alg string) {
	k := s.ring.Load().signer
	return k.Kid, k.Alg
}
