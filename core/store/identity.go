package store

import (
	"context"
	"errors"
)

// ExternalIdentity links a person at an identity provider (issuer and
// subject: OIDC iss/sub, SAML IdP entity id/NameID) to one account.
type ExternalIdentity struct {
	Issuer    string `gorm:"primaryKey;size:512"`
	Subject   string `gorm:"primaryKey;size:256"`
	UserID    string `gorm:"size:36;not null;index"`
	CreatedAt int64  `gorm:"not null"`
}

// LoginChallenge is a login that passed its first factor and waits for a
// second one. ID is the SHA-256 of the challenge id the client and factor
// plugins see; SecretHash that of the secret only the client holds, which
// completing the login needs. Used once, short-lived.
type LoginChallenge struct {
	ID         string `gorm:"primaryKey;size:64"`
	SecretHash string `gorm:"size:64;not null"`
	UserID     string `gorm:"size:36;not null;index"`
	// Method proved the first factor: "password" or an identity plugin id.
	Method string `gorm:"size:64;not null"`
	// Factors is the JSON list of factors offered ({plugin, id, label, path}).
	Factors string `gorm:"not null"`
	// Device is the JSON device spec the session will be bound to.
	Device      string `gorm:"not null;default:''"`
	IP          string `gorm:"size:64;not null;default:''"`
	UserAgent   string `gorm:"size:256;not null;default:''"`
	CreatedAt   int64  `gorm:"not null"`
	ExpiresAt   int64  `gorm:"not null;index"`
	ConfirmedAt int64  `gorm:"not null;default:0"`
	ConfirmedBy string `gorm:"size:64;not null;default:''"`
	Factor      string `gorm:"size:64;not null;default:''"`
	UsedAt      int64  `gorm:"not null;default:0"`
}

// LoginCode is a one-time code an identity plugin issued for a user
// (Host.IssueLogin), stored as its SHA-256. The console exchanges it for
// tokens, or for the login's second-factor challenge when Challenge is set.
type LoginCode struct {
	Hash   string `gorm:"primaryKey;size:64"`
	UserID string `gorm:"size:36;not null"`
	// Method is the identity plugin that issued it.
	Method    string `gorm:"size:64;not null"`
	Device    string `gorm:"size:128;not null;default:''"`
	IP        string `gorm:"size:64;not null;default:''"`
	UserAgent string `gorm:"size:256;not null;default:''"`
	// Challenge is the LoginChallenge.ID this login waits on ("" for none).
	Challenge string `gorm:"size:64;not null;default:''"`
	CreatedAt int64  `gorm:"not null"`
	ExpiresAt int64  `gorm:"not null;index"`
	UsedAt    int64  `gorm:"not null;default:0"`
}

// UserByExternalIdentity returns the user linked to issuer and subject.
func (s *Store) UserByExternalIdentity(ctx context.Context, issuer, subject string) (User, error) {
	var u User
	err := s.DB.WithContext(ctx).Joins("JOIN external_identities ON external_identities.user_id = users.id").
		Where("external_identities.issuer = ? AND external_identities.subject = ?", issuer, subject).Take(&u).Error
	return u, notFound(err)
}

// UserByEmail returns the user with this (lower-case) email.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	return u, notFound(s.DB.WithContext(ctx).Where("email = ?", email).Take(&u).Error)
}

// UserByUsername returns the user with this (lower-case) username.
func (s *Store) UserByUsername(ctx context.Context, username string) (User, error) {
	var u User
	return u, notFound(s.DB.WithContext(ctx).Where("username = ?", username).Take(&u).Error)
}

// UserFilter selects users for ListUsersAfter.
type UserFilter struct {
	After                       string // id
	Limit                       int
	Username, Email, ExternalID string // exact matches ("" = any)
}

// ListUsersAfter lists people's accounts (plugin bots excluded) in id order
// after f.After, filtered by exact username, email and external id.
func (s *Store) ListUsersAfter(ctx context.Context, f UserFilter) ([]User, error) {
	q := s.DB.WithContext(ctx).Where("role <> ?", "bot").Order("id").Limit(f.Limit)
	if f.After != "" {
		q = q.Where("id > ?", f.After)
	}
	if f.Username != "" {
		q = q.Where("username = ?", f.Username)
	}
	if f.Email != "" {
		q = q.Where("email = ?", f.Email)
	}
	if f.ExternalID != "" {
		q = q.Where("external_id = ?", f.ExternalID)
	}
	var us []User
	return us, q.Find(&us).Error
}

// SweepLogins deletes login challenges and codes that expired before
// before (unix ms).
func (s *Store) SweepLogins(ctx context.Context, before int64) error {
	db := s.DB.WithContext(ctx)
	return errors.Join(db.Where("expires_at < ?", before).Delete(&LoginChallenge{}).Error,
		db.Where("expires_at < ?", before).Delete(&LoginCode{}).Error)
}
