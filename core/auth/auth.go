// Package auth owns accounts and credentials: argon2id password hashes,
// short-lived EdDSA access tokens (JWT with kid, published as JWKS) and
// server-side refresh tokens that rotate on use.
package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/unhidra/unhidra/core/store"
)

// Identity is who a verified bearer is. The gateway and the REST API ask an
// Authenticator for it and never look inside tokens themselves.
type Identity struct {
	UserID    string
	Username  string
	Role      string // global role: superadmin or member
	SessionID string // refresh-token family; empty for non-session principals
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
)

// InputError is a rejected registration or password field.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// Options configures the Service.
type Options struct {
	Store   *store.Store
	DataDir string // keys live in DataDir/keys
	// AccessTTL is the lifetime of access tokens (default 15m).
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of refresh tokens (default 30 days).
	RefreshTTL time.Duration
	Argon2     Argon2Params
	// Registration is "open" (default) or "closed".
	Registration string
	// Issuer is the JWT iss claim (default "unhidra").
	Issuer string
}

// Service implements accounts and tokens.
type Service struct {
	o      Options
	mu     sync.RWMutex
	keys   map[string]ed25519.PublicKey // kid → public key (verification set)
	signer ed25519.PrivateKey
	kid    string
	parser *jwt.Parser
}

// Tokens is the login/refresh response body.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

// New loads or creates the signing key and returns the service.
func New(o Options) (*Service, error) {
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
	if o.Registration == "" {
		o.Registration = "open"
	}
	if o.Registration != "open" && o.Registration != "closed" {
		return nil, fmt.Errorf("auth: registration %q: want open or closed", o.Registration)
	}
	if o.Issuer == "" {
		o.Issuer = "unhidra"
	}
	s := &Service{o: o, keys: map[string]ed25519.PublicKey{}}
	s.parser = jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(o.Issuer), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	if err := s.loadKeys(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) loadKeys() error {
	dir := filepath.Join(s.o.DataDir, "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("auth: create key dir: %w", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "ed25519-*.pem"))
	sort.Strings(files)
	type loaded struct {
		kid string
		key ed25519.PrivateKey
		mod time.Time
	}
	var all []loaded
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("auth: read key %s: %w", f, err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return fmt.Errorf("auth: key %s: not PEM", f)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return fmt.Errorf("auth: key %s: %w", f, err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return fmt.Errorf("auth: key %s: not an Ed25519 key", f)
		}
		st, _ := os.Stat(f)
		kid := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "ed25519-"), ".pem")
		all = append(all, loaded{kid, ek, st.ModTime()})
	}
	if len(all) == 0 {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		kid := time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(priv.Public().(ed25519.PublicKey)[:4])
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, "ed25519-"+kid+".pem")
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return fmt.Errorf("auth: write key: %w", err)
		}
		all = append(all, loaded{kid, priv, time.Now()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].kid < all[j].kid })
	for _, l := range all {
		s.keys[l.kid] = l.key.Public().(ed25519.PublicKey)
	}
	newest := all[len(all)-1]
	s.signer, s.kid = newest.key, newest.kid
	return nil
}

// JWKS returns the public verification keys as a JSON Web Key Set.
func (s *Service) JWKS() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	}
	kids := make([]string, 0, len(s.keys))
	for k := range s.keys {
		kids = append(kids, k)
	}
	sort.Strings(kids)
	set := struct {
		Keys []jwk `json:"keys"`
	}{}
	for _, k := range kids {
		set.Keys = append(set.Keys, jwk{"OKP", "Ed25519", base64.RawURLEncoding.EncodeToString(s.keys[k]), k, "EdDSA", "sig"})
	}
	b, _ := json.Marshal(set)
	return b
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{1,31}$`)

// Register creates an account. The first account becomes superadmin.
func (s *Service) Register(ctx context.Context, username, password, email string) (store.User, error) {
	if s.o.Registration == "closed" {
		return store.User{}, ErrRegistrationClosed
	}
	username = strings.ToLower(strings.TrimSpace(username))
	if !usernameRE.MatchString(username) {
		return store.User{}, &InputError{"username must be 2–32 characters: a-z, 0-9, '_', '.', '-', starting with a letter or digit"}
	}
	if err := checkPassword(password); err != nil {
		return store.User{}, err
	}
	var em *string
	if e := strings.ToLower(strings.TrimSpace(email)); e != "" {
		if !strings.Contains(e, "@") || len(e) > 254 {
			return store.User{}, &InputError{"email is not valid"}
		}
		em = &e
	}
	hash, err := HashPassword(password, s.o.Argon2)
	if err != nil {
		return store.User{}, err
	}
	u := store.User{ID: uuid.NewString(), Username: username, Email: em, PasswordHash: hash, Role: "member", CreatedAt: store.Now()}
	if n, err := s.o.Store.CountUsers(ctx); err == nil && n == 0 {
		u.Role = "superadmin"
	}
	if err := s.o.Store.CreateUser(ctx, &u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, ErrTaken
		}
		return store.User{}, err
	}
	return u, nil
}

func checkPassword(pw string) error {
	if utf8.RuneCountInString(pw) < 8 {
		return &InputError{"password must have at least 8 characters"}
	}
	if len(pw) > 1024 {
		return &InputError{"password is longer than 1024 bytes"}
	}
	return nil
}

// Login checks a password and opens a session.
func (s *Service) Login(ctx context.Context, login, password, device string) (Tokens, error) {
	u, err := s.o.Store.UserByLogin(ctx, strings.TrimSpace(login))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// Spend the same time as a real check so timing does not reveal
			// whether the account exists.
			_, _ = CheckPassword(dummyHash, password)
			return Tokens{}, ErrInvalidCredentials
		}
		return Tokens{}, err
	}
	ok, err := CheckPassword(u.PasswordHash, password)
	if err != nil || !ok || u.DeactivatedAt != 0 {
		return Tokens{}, ErrInvalidCredentials
	}
	return s.issue(ctx, u, uuid.NewString(), device)
}

var dummyHash, _ = HashPassword("not-a-real-password", DefaultArgon2)

func (s *Service) issue(ctx context.Context, u store.User, family, device string) (Tokens, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Tokens{}, err
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	now := time.Now()
	rt := store.RefreshToken{ID: uuid.NewString(), Family: family, UserID: u.ID, Hash: hashToken(refresh),
		Device: device, CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(s.o.RefreshTTL).UnixMilli()}
	if err := s.o.Store.DB.WithContext(ctx).Create(&rt).Error; err != nil {
		return Tokens{}, fmt.Errorf("store refresh token: %w", err)
	}
	access, err := s.Sign(u, family, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: int64(s.o.AccessTTL / time.Second), TokenType: "Bearer"}, nil
}

type claims struct {
	jwt.RegisteredClaims
	Username string `json:"preferred_username"`
	Role     string `json:"role"`
	SID      string `json:"sid,omitempty"`
}

// Sign issues an access token for u in session sid.
func (s *Service) Sign(u store.User, sid string, now time.Time) (string, error) {
	s.mu.RLock()
	key, kid := s.signer, s.kid
	s.mu.RUnlock()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.o.Issuer, Subject: u.ID, ID: uuid.NewString(),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.o.AccessTTL)),
		},
		Username: u.Username, Role: u.Role, SID: sid,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	return t.SignedString(key)
}

// Authenticate verifies an access token: signature by a known kid, EdDSA
// only, issuer, expiry.
func (s *Service) Authenticate(_ context.Context, token string) (Identity, error) {
	var c claims
	_, err := s.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		s.mu.RLock()
		k, ok := s.keys[kid]
		s.mu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	})
	if err != nil || c.Subject == "" {
		return Identity{}, ErrInvalidToken
	}
	return Identity{UserID: c.Subject, Username: c.Username, Role: c.Role, SessionID: c.SID}, nil
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// Refresh rotates a refresh token. Presenting a token that was already used
// revokes its whole family (it was stolen or replayed).
func (s *Service) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	var out Tokens
	var reused bool
	err := s.o.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rt store.RefreshToken
		if err := tx.Where("hash = ?", hashToken(refresh)).Take(&rt).Error; err != nil {
			return ErrInvalidToken
		}
		now := store.Now()
		if rt.RevokedAt != 0 || rt.ExpiresAt < now {
			return ErrInvalidToken
		}
		if rt.UsedAt != 0 {
			reused = true
			return tx.Model(&store.RefreshToken{}).Where("family = ? AND revoked_at = 0", rt.Family).Update("revoked_at", now).Error
		}
		r := tx.Model(&store.RefreshToken{}).Where("id = ? AND used_at = 0", rt.ID).Update("used_at", now)
		if r.Error != nil {
			return r.Error
		}
		if r.RowsAffected == 0 {
			return ErrInvalidToken
		}
		var u store.User
		if err := tx.Where("id = ?", rt.UserID).Take(&u).Error; err != nil || u.DeactivatedAt != 0 {
			return ErrInvalidToken
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return err
		}
		next := base64.RawURLEncoding.EncodeToString(raw)
		nrt := store.RefreshToken{ID: uuid.NewString(), Family: rt.Family, UserID: u.ID, Hash: hashToken(next),
			Device: rt.Device, CreatedAt: now, ExpiresAt: now + s.o.RefreshTTL.Milliseconds()}
		if err := tx.Create(&nrt).Error; err != nil {
			return err
		}
		access, err := s.Sign(u, rt.Family, time.Now())
		if err != nil {
			return err
		}
		out = Tokens{AccessToken: access, RefreshToken: next, ExpiresIn: int64(s.o.AccessTTL / time.Second), TokenType: "Bearer"}
		return nil
	})
	if reused {
		return Tokens{}, ErrInvalidToken
	}
	return out, err
}

// Logout revokes the session that refresh belongs to.
func (s *Service) Logout(ctx context.Context, refresh string) error {
	var rt store.RefreshToken
	if err := s.o.Store.DB.WithContext(ctx).Where("hash = ?", hashToken(refresh)).Take(&rt).Error; err != nil {
		return ErrInvalidToken
	}
	return s.o.Store.DB.WithContext(ctx).Model(&store.RefreshToken{}).
		Where("family = ? AND revoked_at = 0", rt.Family).Update("revoked_at", store.Now()).Error
}
