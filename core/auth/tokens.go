package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/store"
)

// TokenError is a refused access token with the reason, e.g. "expired" or
// "signed by an unknown key". errors.Is(err, ErrInvalidToken) holds.
type TokenError struct {
	Reason string
	err    error
}

func (e *TokenError) Error() string { return "invalid token: " + e.Reason }

// Is makes every TokenError an ErrInvalidToken.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

// Unwrap returns the library's error, for logs.
func (e *TokenError) Unwrap() error { return e.err }

// Refusal reasons (the handshake's 401 message says which).
const (
	ReasonMalformed  = "malformed"
	ReasonExpired    = "expired"
	ReasonNotYet     = "not valid yet"
	ReasonUnknownKid = "signed by an unknown key"
	ReasonAlg        = "algorithm not accepted"
	ReasonSignature  = "signature does not verify"
	ReasonClaims     = "claims are not valid"
	ReasonRevoked    = "session revoked"
)

type claims struct {
	jwt.RegisteredClaims
	Username string `json:"preferred_username"`
	Role     string `json:"role"`
	SID      string `json:"sid"`
	DID      string `json:"did,omitempty"`
}

var (
	errUnknownKid = errors.New("unknown kid")
	errAlg        = errors.New("alg does not match the key")
)

// Sign issues an access token for u in session sid on device did.
func (s *Service) Sign(u store.User, sid, did string) (string, error) {
	k := s.ring.Load().signer
	now := s.o.Now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.o.Issuer, Subject: u.ID, ID: uuid.NewString(),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.o.AccessTTL)),
		},
		Username: u.Username, Role: u.Role, SID: sid, DID: did,
	}
	t := jwt.NewWithClaims(k.method, c)
	t.Header["kid"] = k.Kid
	out, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("sign access token with %s: %w", k.Kid, err)
	}
	return out, nil
}

// Authenticate verifies an access token: a kid we publish, the alg of that
// key (so never "none" or HMAC), the signature, issuer, expiry, and that its
// session is not revoked. The revocation check is a map lookup.
func (s *Service) Authenticate(_ context.Context, token string) (Identity, error) {
	var (
		c   claims
		kid string
	)
	ring := s.ring.Load()
	_, err := s.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		k, ok := ring.verify[kid]
		if !ok {
			return nil, errUnknownKid
		}
		if t.Method == nil || t.Method.Alg() != k.Alg {
			return nil, errAlg
		}
		return k.pub, nil
	})
	if errors.Is(err, errUnknownKid) && kid != "" && s.maybeReloadForKid(kid) {
		// A key another node (or `unhidra keys rotate` with no lead) just
		// added: look once more.
		return s.Authenticate(context.Background(), token)
	}
	if err != nil {
		return Identity{}, tokenError(err)
	}
	if c.Subject == "" || c.SID == "" {
		return Identity{}, &TokenError{Reason: ReasonClaims}
	}
	if s.isRevoked(c.SID) {
		return Identity{}, &TokenError{Reason: ReasonRevoked}
	}
	return Identity{UserID: c.Subject, Username: c.Username, Role: c.Role, SessionID: c.SID, DeviceID: c.DID}, nil
}

func tokenError(err error) error {
	r := ReasonClaims
	switch {
	case errors.Is(err, errUnknownKid):
		r = ReasonUnknownKid
	case errors.Is(err, errAlg), errors.Is(err, jwt.ErrTokenUnverifiable):
		// Unverifiable: an alg the library does not know (e.g. "none"
		// without the unsafe key, or a made-up name).
		r = ReasonAlg
	case errors.Is(err, jwt.ErrTokenMalformed):
		r = ReasonMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		r = ReasonSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		r = ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		r = ReasonNotYet
	}
	return &TokenError{Reason: r, err: err}
}

// kidReloadEvery bounds how often an unknown kid may trigger a key reload,
// so tokens with made-up kids cannot turn into a disk-read flood.
const kidReloadEvery = 5 * time.Second

// maybeReloadForKid re-reads the key directory if that has not happened for
// kidReloadEvery and reports whether kid is known now.
func (s *Service) maybeReloadForKid(kid string) bool {
	now := s.o.Now().UnixNano()
	last := s.lastKidReload.Load()
	if now-last < int64(kidReloadEvery) || !s.lastKidReload.CompareAndSwap(last, now) {
		return false
	}
	if err := s.reloadKeys(false); err != nil {
		s.o.Logger.Warn("reload signing keys for an unknown kid", "err", err)
		return false
	}
	_, ok := s.ring.Load().verify[kid]
	return ok
}
