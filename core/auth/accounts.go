package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/unhidra/unhidra/core/clientip"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
)

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{1,31}$`)

// RegisterRequest is a new account.
type RegisterRequest struct {
	Username string
	Password string
	Email    string
	// Invite is the invite token (needed when registration is "invite").
	Invite string
}

// Register creates an account under the registration policy. The first
// account becomes superadmin.
func (s *Service) Register(ctx context.Context, req RegisterRequest) (store.User, error) {
	switch s.o.Registration {
	case RegistrationClosed:
		return store.User{}, ErrRegistrationClosed
	case RegistrationInvite:
		if req.Invite == "" {
			return store.User{}, ErrInviteRequired
		}
	default:
		req.Invite = "" // an invite is not needed and not spent
	}
	u, err := s.createUser(ctx, req, "")
	s.accountEvent(ctx, secevent.UserRegistered, u, req.Username, err)
	return u, err
}

// accountEvent records a registration or account creation: the account on
// success; the refusal's reason when the caller's input or the policy was
// at fault (an internal error is not an event).
func (s *Service) accountEvent(ctx context.Context, t secevent.Type, u store.User, username string, err error) {
	ev := secevent.Event{Type: t, Target: u.ID, TargetKind: "user", Outcome: secevent.Success,
		Details: map[string]string{"username": u.Username, "role": u.Role}}
	if err != nil {
		var ie *InputError
		if !errors.As(err, &ie) && !errors.Is(err, ErrTaken) && !errors.Is(err, ErrRegistrationClosed) && !errors.Is(err, ErrInviteRequired) {
			return
		}
		ev.Outcome, ev.Details = secevent.Failure, map[string]string{"username": username, "reason": err.Error()}
	}
	if t == secevent.UserRegistered && err == nil {
		ev.Actor = u.ID // people sign themselves up
	}
	s.o.Events.Emit(ctx, ev)
}

// CreateUser creates an account regardless of the registration policy (the
// admin API). role is member (default) or superadmin.
func (s *Service) CreateUser(ctx context.Context, req RegisterRequest, role string) (store.User, error) {
	if role == "" {
		role = "member"
	}
	if role != "member" && role != "superadmin" {
		return store.User{}, &InputError{fmt.Sprintf("role %q: want member or superadmin", role)}
	}
	req.Invite = ""
	u, err := s.createUser(ctx, req, role)
	s.accountEvent(ctx, secevent.UserCreated, u, req.Username, err)
	return u, err
}

func (s *Service) createUser(ctx context.Context, req RegisterRequest, role string) (store.User, error) {
	username := strings.ToLower(strings.TrimSpace(req.Username))
	if !usernameRE.MatchString(username) {
		return store.User{}, &InputError{"username must be 2–32 characters: a-z, 0-9, '_', '.', '-', starting with a letter or digit"}
	}
	if err := checkPassword(req.Password); err != nil {
		return store.User{}, err
	}
	var em *string
	if e := strings.ToLower(strings.TrimSpace(req.Email)); e != "" {
		if !strings.Contains(e, "@") || len(e) > 254 || store.CheckText("email", e) != nil {
			return store.User{}, &InputError{"email is not valid"}
		}
		em = &e
	}
	hash, err := HashPassword(req.Password, s.o.Argon2)
	if err != nil {
		return store.User{}, err
	}
	u := store.User{ID: uuid.NewString(), Username: username, Email: em, PasswordHash: hash, Role: role, CreatedAt: s.o.Now().UnixMilli()}
	err = s.o.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if req.Invite != "" {
			r := tx.Model(&store.Invite{}).
				Where("hash = ? AND revoked_at = 0 AND uses < max_uses AND expires_at > ?", hashToken(req.Invite), u.CreatedAt).
				Update("uses", gorm.Expr("uses + 1"))
			if r.Error != nil {
				return r.Error
			}
			if r.RowsAffected != 1 {
				return ErrInviteRequired
			}
		}
		if u.Role == "" {
			u.Role = "member"
			var n int64
			// Plugin bots (role bot) are not people: the first person is
			// still the first account.
			if err := tx.Model(&store.User{}).Where("role <> ?", "bot").Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				// Concurrent registrations may all count no one: the
				// claim, in this transaction, lets exactly one of them win.
				first, err := store.ClaimStep(tx, store.FirstSuperadminStep)
				if err != nil {
					return err
				}
				if first {
					u.Role = "superadmin"
				}
			}
		}
		if err := tx.Create(&u).Error; err != nil {
			if store.IsUniqueViolation(err) {
				return ErrTaken
			}
			return err
		}
		return nil
	})
	if err != nil {
		return store.User{}, err
	}
	s.o.Logger.Info("account created", "user", u.ID, "username", u.Username, "role", u.Role)
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

// LoginRequest is a password login.
type LoginRequest struct {
	Login     string // username or email
	Password  string
	Device    DeviceSpec
	IP        string // client address, for throttling and the session record
	UserAgent string
}

var dummyHash, _ = HashPassword("not-a-real-password", DefaultArgon2)

// Login checks a password and opens a session on a device. Throttled
// addresses and locked accounts get a *LockedError before the password is
// checked; an unknown login costs the same time and gets the same answers as
// a wrong password, lockout included.
func (s *Service) Login(ctx context.Context, req LoginRequest) (Tokens, error) {
	now := s.o.Now()
	ipKey := "ip:" + clientip.Key(req.IP) // an IPv6 client is its /64
	if d := s.lock.check(ipKey, now); d > 0 {
		s.loginEvent(ctx, req, secevent.LoginLocked, store.User{}, secevent.Denied, "address throttled", d)
		return Tokens{}, &LockedError{RetryAfter: d}
	}
	login := strings.ToLower(strings.TrimSpace(req.Login))
	u, err := s.o.Store.UserByLogin(ctx, login)
	acctKey := "acct:" + u.ID
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return Tokens{}, err
		}
		acctKey = "login:" + login
	}
	if d := s.lock.check(acctKey, now); d > 0 {
		s.loginEvent(ctx, req, secevent.LoginLocked, u, secevent.Denied, "account locked", d)
		return Tokens{}, &LockedError{RetryAfter: d}
	}
	ok := false
	if u.ID == "" {
		_, _ = CheckPassword(dummyHash, req.Password)
	} else if ok, err = CheckPassword(u.PasswordHash, req.Password); err != nil {
		return Tokens{}, fmt.Errorf("check password of %s: %w", u.ID, err)
	}
	if !ok {
		d := s.lock.fail(acctKey, s.lock.o.Threshold, now)
		if di := s.lock.fail(ipKey, s.lock.o.IPThreshold, now); di > d {
			d = di
		}
		// The typed login is logged only when it names an account: people
		// type passwords into the username field.
		who := "unknown account"
		if u.ID != "" {
			who = u.ID
		}
		s.o.Logger.Info("login failed", "user", who, "ip", req.IP, "locked_for", d)
		if d > 0 {
			s.loginEvent(ctx, req, secevent.LoginLocked, u, secevent.Denied, "lockout started", d)
			return Tokens{}, &LockedError{RetryAfter: d}
		}
		reason := "wrong password"
		if u.ID == "" {
			reason = "unknown account"
		}
		s.loginEvent(ctx, req, secevent.LoginFailed, u, secevent.Failure, reason, 0)
		return Tokens{}, ErrInvalidCredentials
	}
	if u.DeactivatedAt != 0 {
		s.o.Logger.Info("login refused: account deactivated", "user", u.ID, "ip", req.IP)
		s.loginEvent(ctx, req, secevent.LoginFailed, u, secevent.Denied, "account deactivated", 0)
		return Tokens{}, ErrInvalidCredentials
	}
	s.lock.succeed(acctKey)
	if s.o.Hooks != nil {
		if err := s.o.Hooks.UserWillLogIn(ctx, u, req.Device.Name); err != nil {
			s.o.Logger.Info("login refused by a plugin", "user", u.ID, "ip", req.IP, "err", err)
			s.loginEvent(ctx, req, secevent.LoginFailed, u, secevent.Denied, "refused by a plugin: "+err.Error(), 0)
			return Tokens{}, err
		}
	}
	t, err := s.openSession(ctx, u, req)
	if err == nil {
		s.o.Logger.Info("login", "user", u.ID, "session", t.SessionID, "device", t.DeviceID, "ip", req.IP)
		s.o.Events.Emit(ctx, secevent.Event{Type: secevent.LoginSucceeded, Actor: u.ID, Target: u.ID, TargetKind: "user",
			ClientAddr: req.IP, UserAgent: req.UserAgent, Outcome: secevent.Success,
			Details: map[string]string{"username": u.Username, "session": t.SessionID, "device": t.DeviceID}})
		if s.o.Hooks != nil {
			s.o.Hooks.UserHasLoggedIn(u, req.Device.Name)
		}
	}
	return t, err
}

// loginEvent records a refused login. The typed login name is recorded only
// when it names an account: people type passwords into that field.
func (s *Service) loginEvent(ctx context.Context, req LoginRequest, t secevent.Type, u store.User, outcome, reason string, locked time.Duration) {
	ev := secevent.Event{Type: t, Target: u.ID, TargetKind: "user", ClientAddr: req.IP, UserAgent: req.UserAgent, Outcome: outcome,
		Details: map[string]string{"reason": reason, "username": u.Username}}
	if locked > 0 {
		ev.Details["retry_after_ms"] = strconv.FormatInt(locked.Milliseconds(), 10)
	}
	s.o.Events.Emit(ctx, ev)
}

func (s *Service) openSession(ctx context.Context, u store.User, req LoginRequest) (Tokens, error) {
	now := s.o.Now().UnixMilli()
	d, err := s.deviceFor(ctx, u.ID, req.Device, now)
	if err != nil {
		return Tokens{}, err
	}
	// The User-Agent and address are the client's, not the user's choice:
	// kept as storable text (valid UTF-8, cut on a rune boundary), never refused.
	ua, ip := store.CleanText(req.UserAgent, 256), store.CleanText(req.IP, 64)
	sid, err := uuid.NewV7()
	if err != nil {
		return Tokens{}, fmt.Errorf("session id: %w", err)
	}
	sess := store.Session{ID: sid.String(), UserID: u.ID, DeviceID: d.ID, IP: ip, UserAgent: ua,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now + s.o.RefreshTTL.Milliseconds()}
	refresh, rt := s.newRefresh(sess, now)
	err = s.o.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&sess).Error; err != nil {
			return err
		}
		return tx.Create(&rt).Error
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("store session: %w", err)
	}
	if err := s.trimSessions(ctx, u.ID); err != nil {
		s.o.Logger.Error("end sessions over the per-user cap", "user", u.ID, "err", err)
	}
	return s.tokens(u, sess, refresh)
}

func (s *Service) newRefresh(sess store.Session, now int64) (string, store.RefreshToken) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	return refresh, store.RefreshToken{ID: uuid.NewString(), Family: sess.ID, UserID: sess.UserID, Hash: hashToken(refresh),
		Device: sess.DeviceID, CreatedAt: now, ExpiresAt: now + s.o.RefreshTTL.Milliseconds()}
}

func (s *Service) tokens(u store.User, sess store.Session, refresh string) (Tokens, error) {
	access, err := s.Sign(u, sess.ID, sess.DeviceID)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: int64(s.o.AccessTTL / time.Second), TokenType: "Bearer",
		SessionID: sess.ID, DeviceID: sess.DeviceID}, nil
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// Refresh rotates a refresh token. Presenting a token that was already used
// revokes its whole session (it was stolen or replayed).
func (s *Service) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	if refresh == "" {
		return Tokens{}, ErrInvalidToken
	}
	var (
		out    Tokens
		user   string
		reused *store.Session
	)
	err := s.o.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rt store.RefreshToken
		if err := tx.Where("hash = ?", hashToken(refresh)).Take(&rt).Error; err != nil {
			return ErrInvalidToken
		}
		now := s.o.Now().UnixMilli()
		var sess store.Session
		if err := tx.Where("id = ?", rt.Family).Take(&sess).Error; err != nil {
			return ErrInvalidToken
		}
		if rt.RevokedAt != 0 || rt.ExpiresAt < now || sess.RevokedAt != 0 {
			return ErrInvalidToken
		}
		if rt.UsedAt != 0 {
			reused = &sess
			return nil
		}
		r := tx.Model(&store.RefreshToken{}).Where("id = ? AND used_at = 0", rt.ID).Update("used_at", now)
		if r.Error != nil {
			return r.Error
		}
		if r.RowsAffected == 0 {
			reused = &sess
			return nil
		}
		var u store.User
		if err := tx.Where("id = ?", rt.UserID).Take(&u).Error; err != nil || u.DeactivatedAt != 0 {
			return ErrInvalidToken
		}
		next, nrt := s.newRefresh(sess, now)
		if err := tx.Create(&nrt).Error; err != nil {
			return err
		}
		if err := tx.Model(&store.Session{}).Where("id = ?", sess.ID).
			Updates(map[string]any{"last_seen_at": now, "expires_at": nrt.ExpiresAt}).Error; err != nil {
			return err
		}
		if err := tx.Model(&store.Device{}).Where("id = ?", sess.DeviceID).Update("last_seen_at", now).Error; err != nil {
			return err
		}
		var err error
		out, err = s.tokens(u, sess, next)
		user = u.ID
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInvalidToken) {
			s.o.Events.Emit(ctx, secevent.Event{Type: secevent.TokenRefreshed, TargetKind: "session", Outcome: secevent.Failure,
				Details: map[string]string{"reason": "invalid, expired or revoked refresh token"}})
		}
		return Tokens{}, err
	}
	if reused != nil {
		s.o.Logger.Warn("refresh token reused; session revoked", "user", reused.UserID, "session", reused.ID)
		s.o.Events.Emit(ctx, secevent.Event{Type: secevent.TokenReused, Target: reused.ID, TargetKind: "session", Outcome: secevent.Denied,
			Details: map[string]string{"user": reused.UserID}})
		if _, err := s.revokeSessions(ctx, RevokeRefreshReuse, func(q *gorm.DB) *gorm.DB { return q.Where("id = ?", reused.ID) }); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, ErrInvalidToken
	}
	s.o.Events.Emit(ctx, secevent.Event{Type: secevent.TokenRefreshed, Actor: user, Target: out.SessionID, TargetKind: "session",
		Outcome: secevent.Success, Details: map[string]string{"user": user}})
	return out, nil
}

// Logout ends the session a refresh token belongs to.
func (s *Service) Logout(ctx context.Context, refresh string) error {
	var rt store.RefreshToken
	if refresh == "" || s.o.Store.DB.WithContext(ctx).Where("hash = ?", hashToken(refresh)).Take(&rt).Error != nil {
		return ErrInvalidToken
	}
	_, err := s.revokeSessions(ctx, RevokeLogout, func(q *gorm.DB) *gorm.DB { return q.Where("id = ?", rt.Family) })
	return err
}

// ChangePassword sets a new password after checking the current one (which
// counts toward lockout like a login), and revokes every other session of
// the user; the caller's session stays.
func (s *Service) ChangePassword(ctx context.Context, id Identity, current, next, ip string) (revoked int, err error) {
	now := s.o.Now()
	acctKey, ipKey := "acct:"+id.UserID, "ip:"+ip
	if d := max(s.lock.check(acctKey, now), s.lock.check(ipKey, now)); d > 0 {
		return 0, &LockedError{RetryAfter: d}
	}
	u, err := s.o.Store.UserByID(ctx, id.UserID)
	if err != nil {
		return 0, err
	}
	ok, err := CheckPassword(u.PasswordHash, current)
	if err != nil {
		return 0, fmt.Errorf("check password of %s: %w", u.ID, err)
	}
	if !ok {
		d := max(s.lock.fail(acctKey, s.lock.o.Threshold, now), s.lock.fail(ipKey, s.lock.o.IPThreshold, now))
		if d > 0 {
			s.passwordEvent(ctx, id, secevent.Denied, "lockout started")
			return 0, &LockedError{RetryAfter: d}
		}
		s.passwordEvent(ctx, id, secevent.Failure, "wrong current password")
		return 0, ErrWrongPassword
	}
	if err := checkPassword(next); err != nil {
		s.passwordEvent(ctx, id, secevent.Failure, err.Error())
		return 0, err
	}
	hash, err := HashPassword(next, s.o.Argon2)
	if err != nil {
		return 0, err
	}
	if err := s.o.Store.DB.WithContext(ctx).Model(&store.User{}).Where("id = ?", u.ID).Update("password_hash", hash).Error; err != nil {
		return 0, fmt.Errorf("store new password of %s: %w", u.ID, err)
	}
	s.lock.succeed(acctKey)
	s.passwordEvent(ctx, id, secevent.Success, "")
	n, err := s.RevokeUserSessions(ctx, u.ID, id.SessionID, RevokePasswordChanged)
	s.o.Logger.Info("password changed", "user", u.ID, "other_sessions_revoked", n)
	return n, err
}

func (s *Service) passwordEvent(ctx context.Context, id Identity, outcome, reason string) {
	ev := secevent.Event{Type: secevent.PasswordChanged, Actor: id.UserID, Target: id.UserID, TargetKind: "user", Outcome: outcome}
	if reason != "" {
		ev.Details = map[string]string{"reason": reason}
	}
	s.o.Events.Emit(ctx, ev)
}

// SetActive deactivates (ending every session) or reactivates an account.
func (s *Service) SetActive(ctx context.Context, user string, active bool) (store.User, error) {
	var at any = int64(0)
	if !active {
		at = gorm.Expr("CASE WHEN deactivated_at = 0 THEN ? ELSE deactivated_at END", s.o.Now().UnixMilli())
	}
	r := s.o.Store.DB.WithContext(ctx).Model(&store.User{}).Where("id = ?", user).Update("deactivated_at", at)
	if r.Error != nil {
		return store.User{}, r.Error
	}
	if r.RowsAffected == 0 {
		return store.User{}, fmt.Errorf("user %q: %w", user, ErrNotFound)
	}
	t := secevent.UserReactivated
	if !active {
		t = secevent.UserDeactivated
	}
	s.o.Events.Emit(ctx, secevent.Event{Type: t, Target: user, TargetKind: "user", Outcome: secevent.Success})
	if !active {
		if _, err := s.RevokeUserSessions(ctx, user, "", RevokeDeactivated); err != nil {
			return store.User{}, err
		}
	}
	s.o.Logger.Info("account active state changed", "user", user, "active", active)
	return s.o.Store.UserByID(ctx, user)
}

// InviteRequest configures a new invite.
type InviteRequest struct {
	MaxUses int           // registrations it allows (default 1)
	TTL     time.Duration // lifetime (default 7 days)
	Note    string        // free text for admins ("for the design team")
}

// InviteView is an invite as admins see it; Token is set only on creation
// (only its hash is stored).
type InviteView struct {
	ID        string `json:"id"`
	Token     string `json:"token,omitempty"`
	Note      string `json:"note,omitempty"`
	CreatedBy string `json:"created_by"`
	MaxUses   int    `json:"max_uses"`
	Uses      int    `json:"uses"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt int64  `json:"expires_at"`
	RevokedAt int64  `json:"revoked_at,omitempty"`
}

func inviteView(i store.Invite) InviteView {
	return InviteView{ID: i.ID, Note: i.Note, CreatedBy: i.CreatedBy, MaxUses: i.MaxUses, Uses: i.Uses,
		CreatedAt: i.CreatedAt, ExpiresAt: i.ExpiresAt, RevokedAt: i.RevokedAt}
}

// CreateInvite stores a new invite made by creator ("" for the CLI) and
// returns it with its token. It needs only the store, so `unhidra invite`
// can bootstrap an invite-only server before anyone can log in.
func CreateInvite(ctx context.Context, st *store.Store, creator string, req InviteRequest, now time.Time) (InviteView, error) {
	if req.MaxUses == 0 {
		req.MaxUses = 1
	}
	if req.MaxUses < 0 || req.MaxUses > 100000 {
		return InviteView{}, &InputError{fmt.Sprintf("max_uses %d: want 1–100000", req.MaxUses)}
	}
	if req.TTL == 0 {
		req.TTL = 7 * 24 * time.Hour
	}
	if req.TTL < time.Minute || req.TTL > 366*24*time.Hour {
		return InviteView{}, &InputError{fmt.Sprintf("invite lifetime %v: want 1m–366d", req.TTL)}
	}
	if len(req.Note) > 256 {
		return InviteView{}, &InputError{"note is longer than 256 bytes"}
	}
	if err := store.CheckText("note", req.Note); err != nil {
		return InviteView{}, &InputError{err.Error()}
	}
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	token := "inv_" + base64.RawURLEncoding.EncodeToString(raw)
	inv := store.Invite{ID: uuid.NewString(), Hash: hashToken(token), CreatedBy: creator, Note: req.Note, MaxUses: req.MaxUses,
		CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(req.TTL).UnixMilli()}
	if err := st.DB.WithContext(ctx).Create(&inv).Error; err != nil {
		return InviteView{}, fmt.Errorf("store invite: %w", err)
	}
	v := inviteView(inv)
	v.Token = token
	return v, nil
}

// CreateInvite is the package function with the service's store and clock.
func (s *Service) CreateInvite(ctx context.Context, creator string, req InviteRequest) (InviteView, error) {
	v, err := CreateInvite(ctx, s.o.Store, creator, req, s.o.Now())
	if err == nil {
		s.o.Events.Emit(ctx, secevent.Event{Type: secevent.InviteCreated, Actor: creator, Target: v.ID, TargetKind: "invite",
			Outcome: secevent.Success, Details: map[string]string{"max_uses": strconv.Itoa(v.MaxUses), "expires_at": strconv.FormatInt(v.ExpiresAt, 10)}})
	}
	return v, err
}

// ListInvites returns invites, newest first.
func (s *Service) ListInvites(ctx context.Context) ([]InviteView, error) {
	var rows []store.Invite
	if err := s.o.Store.DB.WithContext(ctx).Order("created_at DESC").Limit(500).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]InviteView, len(rows))
	for i, r := range rows {
		out[i] = inviteView(r)
	}
	return out, nil
}

// RevokeInvite makes an invite unusable.
func (s *Service) RevokeInvite(ctx context.Context, id string) error {
	r := s.o.Store.DB.WithContext(ctx).Model(&store.Invite{}).Where("id = ? AND revoked_at = 0", id).Update("revoked_at", s.o.Now().UnixMilli())
	if r.Error != nil {
		return r.Error
	}
	if r.RowsAffected == 0 {
		return fmt.Errorf("invite %q: %w", id, ErrNotFound)
	}
	s.o.Events.Emit(ctx, secevent.Event{Type: secevent.InviteRevoked, Target: id, TargetKind: "invite", Outcome: secevent.Success})
	return nil
}
