package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/unhidra/unhidra/core/store"
)

// Accounts made or changed by plugins: identities linked just in time by
// identity plugins (OIDC, SAML) and users provisioned by SCIM-like plugins.
// Such accounts have no password (they sign in through their plugin) until
// someone sets one.

// noPassword is the password hash of an account without a password; it
// matches nothing.
const noPassword = "!"

// ExternalIdentity is a person as an identity provider asserts them.
type ExternalIdentity struct {
	Issuer, Subject string
	Username        string
	Email           string
	EmailVerified   bool
	DisplayName     string
}

// Link policies of ResolveRequest.
const (
	LinkNever    = ""
	LinkEmail    = "email"
	LinkUsername = "username"
)

// ResolveRequest maps an external identity to an account.
type ResolveRequest struct {
	Identity ExternalIdentity
	// Create makes an account just in time when none is linked or linkable.
	Create bool
	// Link links an existing account when none is linked yet: LinkEmail
	// (a verified email only), LinkUsername, or LinkNever.
	Link string
	// UpdateProfile copies the display name and a verified email from the
	// claims.
	UpdateProfile bool
}

// Resolved is ResolveIdentity's answer.
type Resolved struct {
	User    store.User
	Created bool
	Linked  bool
	// Changed lists the profile fields UpdateProfile changed.
	Changed []string
}

func checkIdentity(id ExternalIdentity) error {
	switch {
	case id.Issuer == "" || len(id.Issuer) > 512 || !utf8.ValidString(id.Issuer):
		return &InputError{"identity issuer must be 1–512 bytes of UTF-8"}
	case id.Subject == "" || len(id.Subject) > 256 || !utf8.ValidString(id.Subject):
		return &InputError{"identity subject must be 1–256 bytes of UTF-8"}
	}
	return nil
}

// ResolveIdentity returns the account linked to an external identity; else,
// per req.Link and req.Create, links an existing account or creates one
// (with no password, role member). ErrNotFound when nothing matched and
// creating was not allowed; ErrDeactivated for a deactivated account.
func (s *Service) ResolveIdentity(ctx context.Context, req ResolveRequest) (Resolved, error) {
	id := req.Identity
	if err := checkIdentity(id); err != nil {
		return Resolved{}, err
	}
	if req.Link != LinkNever && req.Link != LinkEmail && req.Link != LinkUsername {
		return Resolved{}, &InputError{fmt.Sprintf("link %q: want \"\", \"email\" or \"username\"", req.Link)}
	}
	// Only a verified email is stored, copied or linked by: an unverified
	// one could pre-claim someone else's address.
	email, err := normEmail(id.Email)
	if err != nil || !id.EmailVerified {
		email = "" // a claim we cannot store is ignored, not fatal
	}
	var out Resolved
	for attempt := 0; ; attempt++ {
		out, err = s.resolveOnce(ctx, req, email)
		// Two first logins of one person race: the loser finds the link.
		if !errors.Is(err, store.ErrConflict) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return Resolved{}, err
	}
	if out.User.DeactivatedAt != 0 {
		return Resolved{}, fmt.Errorf("user %s: %w", out.User.ID, ErrDeactivated)
	}
	if req.UpdateProfile && !out.Created {
		upd := UserUpdate{DisplayName: strings.TrimSpace(id.DisplayName), Email: email}
		cur := ""
		if out.User.Email != nil {
			cur = *out.User.Email
		}
		if upd.DisplayName != out.User.DisplayName && upd.DisplayName != "" {
			upd.Fields = append(upd.Fields, "display_name")
		}
		if email != "" && email != cur {
			if other, err := s.o.Store.UserByEmail(ctx, email); err == nil && other.ID != out.User.ID {
				s.o.Logger.Warn("identity claims an email another account has; not copied", "user", out.User.ID, "issuer", id.Issuer)
			} else {
				upd.Fields = append(upd.Fields, "email")
			}
		}
		if len(upd.Fields) > 0 {
			u, changed, err := s.UpdateUser(ctx, out.User.ID, upd)
			if err != nil {
				return Resolved{}, err
			}
			out.User, out.Changed = u, changed
		}
	}
	return out, nil
}

func (s *Service) resolveOnce(ctx context.Context, req ResolveRequest, email string) (Resolved, error) {
	id := req.Identity
	u, err := s.o.Store.UserByExternalIdentity(ctx, id.Issuer, id.Subject)
	if err == nil {
		return Resolved{User: u}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return Resolved{}, err
	}
	var target store.User
	switch {
	case req.Link == LinkEmail && email != "":
		target, err = s.o.Store.UserByEmail(ctx, email)
	case req.Link == LinkUsername && id.Username != "":
		target, err = s.o.Store.UserByUsername(ctx, strings.ToLower(strings.TrimSpace(id.Username)))
	default:
		err = store.ErrNotFound
	}
	if err == nil && target.Role != "bot" {
		if err := s.link(ctx, s.o.Store.DB.WithContext(ctx), id, target.ID); err != nil {
			return Resolved{}, err
		}
		s.o.Logger.Info("external identity linked", "user", target.ID, "issuer", id.Issuer, "by", req.Link)
		return Resolved{User: target, Linked: true}, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Resolved{}, err
	}
	if !req.Create {
		return Resolved{}, fmt.Errorf("no account for this identity of %s: %w", id.Issuer, ErrNotFound)
	}
	u, err = s.createJIT(ctx, id, email)
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{User: u, Created: true}, nil
}

func (s *Service) link(ctx context.Context, tx *gorm.DB, id ExternalIdentity, user string) error {
	err := tx.Create(&store.ExternalIdentity{Issuer: id.Issuer, Subject: id.Subject, UserID: user, CreatedAt: s.o.Now().UnixMilli()}).Error
	if store.IsUniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

// createJIT creates the account of an identity's first login: the claimed
// username (made valid, and unique with a -2, -3… suffix: never someone
// else's account), the verified email unless another account has it,
// linked in the same transaction.
func (s *Service) createJIT(ctx context.Context, id ExternalIdentity, email string) (store.User, error) {
	base := usernameFrom(id)
	if email != "" {
		if _, err := s.o.Store.UserByEmail(ctx, email); err == nil {
			email = ""
		}
	}
	dn, _ := normDisplayName(id.DisplayName)
	for i := 1; i <= 50; i++ {
		name := base
		if i > 1 {
			sfx := "-" + strconv.Itoa(i)
			name = strings.TrimRight(base[:min(len(base), 32-len(sfx))], "-_.") + sfx
		}
		if _, err := s.o.Store.UserByUsername(ctx, name); err == nil {
			continue
		}
		u := store.User{ID: uuid.NewString(), Username: name, PasswordHash: noPassword, Role: "member",
			DisplayName: dn, CreatedAt: s.o.Now().UnixMilli()}
		if email != "" {
			u.Email = &email
		}
		err := s.o.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&u).Error; err != nil {
				if store.IsUniqueViolation(err) {
					return ErrTaken
				}
				return err
			}
			return s.link(ctx, tx, id, u.ID)
		})
		if errors.Is(err, ErrTaken) {
			continue // taken meanwhile (or the email was): next name
		}
		if err != nil {
			return store.User{}, err
		}
		s.o.Logger.Info("account created", "user", u.ID, "username", u.Username, "role", u.Role, "issuer", id.Issuer)
		return u, nil
	}
	return store.User{}, fmt.Errorf("no free username near %q: %w", base, ErrTaken)
}

// usernameFrom makes a valid username from an identity's claims: the
// username claim, else the email's local part, else one derived from the
// issuer and subject.
func usernameFrom(id ExternalIdentity) string {
	for _, c := range []string{id.Username, strings.Split(id.Email, "@")[0]} {
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(c)) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
				b.WriteRune(r)
			case unicode.IsSpace(r), r == '@', r == '+':
				b.WriteByte('-')
			}
		}
		name := strings.TrimLeft(b.String(), "_.-")
		if len(name) > 32 {
			name = name[:32]
		}
		if usernameRE.MatchString(name) {
			return name
		}
	}
	h := sha256.Sum256([]byte(id.Issuer + "\x00" + id.Subject))
	return "user-" + hex.EncodeToString(h[:5])
}

func normEmail(e string) (string, error) {
	e = strings.ToLower(strings.TrimSpace(e))
	if e == "" {
		return "", nil
	}
	if !strings.Contains(e, "@") || len(e) > 254 || !utf8.ValidString(e) {
		return "", &InputError{fmt.Sprintf("email %q is not valid", e)}
	}
	return e, nil
}

func normDisplayName(n string) (string, error) {
	n = strings.TrimSpace(n)
	if len(n) > 128 || !utf8.ValidString(n) || strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return "", &InputError{"display name must be at most 128 bytes of UTF-8 without control characters"}
	}
	return n, nil
}

func normExternalID(x string) (string, error) {
	if len(x) > 256 || !utf8.ValidString(x) || strings.IndexFunc(x, unicode.IsControl) >= 0 {
		return "", &InputError{"external id must be at most 256 bytes of UTF-8 without control characters"}
	}
	return x, nil
}

func normUsername(n string) (string, error) {
	n = strings.ToLower(strings.TrimSpace(n))
	if !usernameRE.MatchString(n) {
		return "", &InputError{fmt.Sprintf("username %q must be 2–32 characters: a-z, 0-9, '_', '.', '-', starting with a letter or digit", n)}
	}
	return n, nil
}

// ProvisionRequest is an account a provisioning plugin creates.
type ProvisionRequest struct {
	Username, Email, DisplayName, ExternalID string
	// Active false creates the account deactivated.
	Active bool
}

// ProvisionUser creates an account without a password (role member; never
// the installation's first superadmin). A taken username, email or external
// id is ErrTaken.
func (s *Service) ProvisionUser(ctx context.Context, req ProvisionRequest) (store.User, error) {
	name, err := normUsername(req.Username)
	if err != nil {
		return store.User{}, err
	}
	email, err := normEmail(req.Email)
	if err != nil {
		return store.User{}, err
	}
	dn, err := normDisplayName(req.DisplayName)
	if err != nil {
		return store.User{}, err
	}
	xid, err := normExternalID(req.ExternalID)
	if err != nil {
		return store.User{}, err
	}
	now := s.o.Now().UnixMilli()
	u := store.User{ID: uuid.NewString(), Username: name, PasswordHash: noPassword, Role: "member", DisplayName: dn, CreatedAt: now}
	if email != "" {
		u.Email = &email
	}
	if xid != "" {
		u.ExternalID = &xid
	}
	if !req.Active {
		u.DeactivatedAt = now
	}
	if err := s.o.Store.CreateUser(ctx, &u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, fmt.Errorf("username, email or external id: %w", ErrTaken)
		}
		return store.User{}, err
	}
	s.o.Logger.Info("account provisioned", "user", u.ID, "username", u.Username, "active", req.Active)
	return u, nil
}

// UserUpdate names the profile fields to change (Fields: username, email,
// display_name, external_id) and their new values ("" clears email and
// external id).
type UserUpdate struct {
	Fields                                   []string
	Username, Email, DisplayName, ExternalID string
}

// UpdateUser applies an update and returns the account and the fields that
// changed. An unknown field or an invalid value changes nothing; a taken
// username, email or external id is ErrTaken.
func (s *Service) UpdateUser(ctx context.Context, id string, up UserUpdate) (store.User, []string, error) {
	if len(up.Fields) == 0 {
		return store.User{}, nil, &InputError{"name the fields to update (username, email, display_name, external_id)"}
	}
	u, err := s.o.Store.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Role == "bot") {
		return store.User{}, nil, fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return store.User{}, nil, err
	}
	set := map[string]any{}
	var changed []string
	cur := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	orNil := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	for _, f := range up.Fields {
		if slices.Contains(changed, f) {
			continue
		}
		switch f {
		case "username":
			v, err := normUsername(up.Username)
			if err != nil {
				return store.User{}, nil, err
			}
			if v != u.Username {
				set["username"], u.Username = v, v
				changed = append(changed, f)
			}
		case "email":
			v, err := normEmail(up.Email)
			if err != nil {
				return store.User{}, nil, err
			}
			if v != cur(u.Email) {
				set["email"] = orNil(v)
				u.Email = nil
				if v != "" {
					u.Email = &v
				}
				changed = append(changed, f)
			}
		case "display_name":
			v, err := normDisplayName(up.DisplayName)
			if err != nil {
				return store.User{}, nil, err
			}
			if v != u.DisplayName {
				set["display_name"], u.DisplayName = v, v
				changed = append(changed, f)
			}
		case "external_id":
			v, err := normExternalID(up.ExternalID)
			if err != nil {
				return store.User{}, nil, err
			}
			if v != cur(u.ExternalID) {
				set["external_id"] = orNil(v)
				u.ExternalID = nil
				if v != "" {
					u.ExternalID = &v
				}
				changed = append(changed, f)
			}
		default:
			return store.User{}, nil, &InputError{fmt.Sprintf("field %q: want username, email, display_name or external_id", f)}
		}
	}
	if len(set) == 0 {
		return u, nil, nil
	}
	if err := s.o.Store.DB.WithContext(ctx).Model(&store.User{}).Where("id = ?", id).Updates(set).Error; err != nil {
		if store.IsUniqueViolation(err) {
			return store.User{}, nil, fmt.Errorf("%s: %w", strings.Join(changed, ", "), ErrTaken)
		}
		return store.User{}, nil, err
	}
	s.o.Logger.Info("account updated", "user", id, "fields", changed)
	return u, changed, nil
}
