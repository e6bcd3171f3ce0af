package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
)

// Why a session ended (stored in sessions.revoke_reason).
const (
	RevokeLogout          = "logout"
	RevokePasswordChanged = "password_changed"
	RevokeAdmin           = "admin"
	RevokeDevice          = "device_revoked"
	RevokeDeactivated     = "deactivated"
	RevokeRefreshReuse    = "refresh_reuse"
	RevokeUser            = "user" // the owner ended it from another session
	RevokeSessionLimit    = "session_limit"
)

// OnRevoke registers fn to be called with every batch of revoked sessions:
// those revoked here at once, and those revoked by other nodes when the
// database poll sees them. The gateway uses it to close live WebSockets.
func (s *Service) OnRevoke(fn func([]Revocation)) {
	s.lisMu.Lock()
	s.listeners = append(s.listeners, fn)
	s.lisMu.Unlock()
}

func (s *Service) notify(rs []Revocation) {
	if len(rs) == 0 {
		return
	}
	s.lisMu.Lock()
	ls := append([]func([]Revocation){}, s.listeners...)
	s.lisMu.Unlock()
	for _, fn := range ls {
		fn(rs)
	}
}

// Revoked reports whether session sid is revoked (an in-memory lookup).
func (s *Service) Revoked(sid string) bool { return s.isRevoked(sid) }

func (s *Service) isRevoked(sid string) bool {
	s.revMu.RLock()
	_, ok := s.revoked[sid]
	s.revMu.RUnlock()
	return ok
}

// markRevoked adds sessions to the in-memory set and returns the ones that
// were not in it yet.
func (s *Service) markRevoked(rows []store.Session) []Revocation {
	var fresh []Revocation
	s.revMu.Lock()
	for _, r := range rows {
		if _, ok := s.revoked[r.ID]; !ok {
			fresh = append(fresh, Revocation{SessionID: r.ID, UserID: r.UserID})
		}
		// No access token of this session outlives revoked_at + AccessTTL.
		s.revoked[r.ID] = r.RevokedAt + (s.o.AccessTTL + leeway + time.Minute).Milliseconds()
		if r.RevokedAt > s.revSince {
			s.revSince = r.RevokedAt
		}
	}
	s.revMu.Unlock()
	return fresh
}

// pollRevocations reads sessions revoked since the last poll (with overlap
// for clock skew between nodes), adds them to the set, notifies listeners of
// new ones and forgets entries whose tokens have all expired.
func (s *Service) pollRevocations(ctx context.Context) error {
	now := s.o.Now().UnixMilli()
	s.revMu.RLock()
	since := s.revSince - 10_000
	s.revMu.RUnlock()
	if floor := now - (s.o.AccessTTL + leeway + time.Minute).Milliseconds(); since < floor {
		since = floor
	}
	var rows []store.Session
	if err := s.o.Store.DB.WithContext(ctx).Select("id", "user_id", "revoked_at").
		Where("revoked_at > ?", since).Find(&rows).Error; err != nil {
		return err
	}
	fresh := s.markRevoked(rows)
	s.revMu.Lock()
	for id, until := range s.revoked {
		if until < now {
			delete(s.revoked, id)
		}
	}
	s.revMu.Unlock()
	s.notify(fresh)
	return nil
}

// revokeSessions revokes every live session matching where and tells the
// listeners. It returns how many it revoked.
func (s *Service) revokeSessions(ctx context.Context, reason string, where func(*gorm.DB) *gorm.DB) (int, error) {
	now := s.o.Now().UnixMilli()
	var rows []store.Session
	err := s.o.Store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := where(tx.Model(&store.Session{})).Where("revoked_at = 0").Select("id", "user_id").Find(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		ids := make([]string, len(rows))
		for i := range rows {
			ids[i] = rows[i].ID
			rows[i].RevokedAt = now
		}
		if err := tx.Model(&store.Session{}).Where("id IN ? AND revoked_at = 0", ids).
			Updates(map[string]any{"revoked_at": now, "revoke_reason": reason}).Error; err != nil {
			return err
		}
		return tx.Model(&store.RefreshToken{}).Where("family IN ? AND revoked_at = 0", ids).Update("revoked_at", now).Error
	})
	if err != nil {
		return 0, fmt.Errorf("revoke sessions (%s): %w", reason, err)
	}
	s.notify(s.markRevoked(rows))
	if len(rows) > 0 {
		s.o.Logger.Info("sessions revoked", "count", len(rows), "reason", reason)
	}
	s.revokeEvents(ctx, rows, reason)
	return len(rows), nil
}

// revokeEvents records one event per revoked session: logout for a logout,
// session.revoked with the reason otherwise. The actor is the one ctx names
// (the owner, an admin, a plugin); a logout without one (by refresh token)
// is the owner's, anything else the system's (refresh-token reuse).
func (s *Service) revokeEvents(ctx context.Context, rows []store.Session, reason string) {
	t := secevent.SessionRevoked
	if reason == RevokeLogout {
		t = secevent.Logout
	}
	actor := secevent.ActorOf(ctx)
	for _, r := range rows {
		ev := secevent.Event{Type: t, Actor: actor, Target: r.ID, TargetKind: "session", Outcome: secevent.Success,
			Details: map[string]string{"user": r.UserID, "reason": reason}}
		if ev.Actor == "" {
			ev.Actor = secevent.System
			if reason == RevokeLogout {
				ev.Actor = r.UserID
			}
		}
		s.o.Events.Emit(ctx, ev)
	}
}

// RevokeSession ends one session. With owner set, only that user's session
// is found (a user ending their own session); empty owner is an admin.
func (s *Service) RevokeSession(ctx context.Context, owner, sid, reason string) error {
	n, err := s.revokeSessions(ctx, reason, func(q *gorm.DB) *gorm.DB {
		q = q.Where("id = ?", sid)
		if owner != "" {
			q = q.Where("user_id = ?", owner)
		}
		return q
	})
	if err == nil && n == 0 {
		var cnt int64
		q := s.o.Store.DB.WithContext(ctx).Model(&store.Session{}).Where("id = ?", sid)
		if owner != "" {
			q = q.Where("user_id = ?", owner)
		}
		if q.Count(&cnt); cnt == 0 {
			return fmt.Errorf("session %q: %w", sid, ErrNotFound)
		}
	}
	return err
}

// RevokeUserSessions ends every session of user except keep.
func (s *Service) RevokeUserSessions(ctx context.Context, user, keep, reason string) (int, error) {
	return s.revokeSessions(ctx, reason, func(q *gorm.DB) *gorm.DB {
		q = q.Where("user_id = ?", user)
		if keep != "" {
			q = q.Where("id <> ?", keep)
		}
		return q
	})
}

// trimSessions ends user's least recently used active sessions beyond
// MaxSessions. Every login calls it after its session committed, and the
// order (last seen, then id: session ids are UUIDv7, so creation order on
// a node) is total, so concurrent logins agree and the last one to finish
// leaves at most MaxSessions.
func (s *Service) trimSessions(ctx context.Context, user string) error {
	if s.o.MaxSessions <= 0 {
		return nil
	}
	var ids []string
	err := s.o.Store.DB.WithContext(ctx).Model(&store.Session{}).
		Where("user_id = ? AND revoked_at = 0 AND expires_at > ?", user, s.o.Now().UnixMilli()).
		Order("last_seen_at DESC").Order("id DESC").Pluck("id", &ids).Error
	if err != nil {
		return fmt.Errorf("list sessions of %s: %w", user, err)
	}
	if len(ids) <= s.o.MaxSessions {
		return nil
	}
	_, err = s.revokeSessions(ctx, RevokeSessionLimit, func(q *gorm.DB) *gorm.DB { return q.Where("id IN ?", ids[s.o.MaxSessions:]) })
	return err
}

// SessionView is a session as its owner or an admin sees it.
type SessionView struct {
	ID           string `json:"id"`
	User         string `json:"user"`
	Device       string `json:"device"`
	IP           string `json:"ip"`
	UserAgent    string `json:"user_agent,omitempty"`
	CreatedAt    int64  `json:"created_at"`
	LastSeenAt   int64  `json:"last_seen_at"`
	ExpiresAt    int64  `json:"expires_at"`
	RevokedAt    int64  `json:"revoked_at,omitempty"`
	RevokeReason string `json:"revoke_reason,omitempty"`
	Current      bool   `json:"current,omitempty"`
}

// ListSessions returns user's sessions, newest first; active only unless all.
func (s *Service) ListSessions(ctx context.Context, user string, all bool) ([]SessionView, error) {
	var rows []store.Session
	q := s.o.Store.DB.WithContext(ctx).Where("user_id = ?", user).Order("created_at DESC").Limit(500)
	if !all {
		q = q.Where("revoked_at = 0 AND expires_at > ?", s.o.Now().UnixMilli())
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]SessionView, len(rows))
	for i, r := range rows {
		out[i] = SessionView{r.ID, r.UserID, r.DeviceID, r.IP, r.UserAgent, r.CreatedAt, r.LastSeenAt, r.ExpiresAt, r.RevokedAt, r.RevokeReason, false}
	}
	return out, nil
}

// DeviceSpec names a device at login or registration. At login, ID picks an
// existing device of the user; otherwise a new device is created.
type DeviceSpec struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Platform  string `json:"platform"`
	PublicKey string `json:"public_key"`
}

func (d *DeviceSpec) check() error {
	d.Name, d.Platform = strings.TrimSpace(d.Name), strings.TrimSpace(d.Platform)
	if len(d.Name) > 128 {
		return &InputError{"device name is longer than 128 bytes"}
	}
	if len(d.Platform) > 64 {
		return &InputError{"device platform is longer than 64 bytes"}
	}
	if len(d.PublicKey) > 4096 {
		return &InputError{"device public_key is longer than 4096 bytes"}
	}
	for _, f := range []struct{ name, v string }{{"device name", d.Name}, {"device platform", d.Platform}, {"device public_key", d.PublicKey}} {
		if err := store.CheckText(f.name, f.v); err != nil {
			return &InputError{err.Error()}
		}
	}
	if d.Name == "" {
		d.Name = "unnamed device"
	}
	return nil
}

// DeviceView is a device as its owner sees it.
type DeviceView struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Platform   string `json:"platform"`
	PublicKey  string `json:"public_key,omitempty"`
	CreatedAt  int64  `json:"created_at"`
	LastSeenAt int64  `json:"last_seen_at"`
	RevokedAt  int64  `json:"revoked_at,omitempty"`
	Current    bool   `json:"current,omitempty"`
}

func deviceView(d store.Device) DeviceView {
	return DeviceView{d.ID, d.Name, d.Platform, d.PublicKey, d.CreatedAt, d.LastSeenAt, d.RevokedAt, false}
}

// RegisterDevice creates a device for user; a later login names it by id.
func (s *Service) RegisterDevice(ctx context.Context, user string, spec DeviceSpec) (DeviceView, error) {
	if err := spec.check(); err != nil {
		return DeviceView{}, err
	}
	now := s.o.Now().UnixMilli()
	d := store.Device{ID: uuid.NewString(), UserID: user, Name: spec.Name, Platform: spec.Platform, PublicKey: spec.PublicKey,
		CreatedAt: now, LastSeenAt: now}
	if err := s.o.Store.DB.WithContext(ctx).Create(&d).Error; err != nil {
		return DeviceView{}, fmt.Errorf("create device: %w", err)
	}
	return deviceView(d), nil
}

// ListDevices returns user's devices, most recently seen first.
func (s *Service) ListDevices(ctx context.Context, user string, all bool) ([]DeviceView, error) {
	var rows []store.Device
	q := s.o.Store.DB.WithContext(ctx).Where("user_id = ?", user).Order("last_seen_at DESC").Limit(500)
	if !all {
		q = q.Where("revoked_at = 0")
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]DeviceView, len(rows))
	for i, d := range rows {
		out[i] = deviceView(d)
	}
	return out, nil
}

// UpdateDevice renames a device or sets its public key (nil leaves a field).
func (s *Service) UpdateDevice(ctx context.Context, user, id string, name, publicKey *string) (DeviceView, error) {
	var d store.Device
	if err := s.o.Store.DB.WithContext(ctx).Where("id = ? AND user_id = ? AND revoked_at = 0", id, user).Take(&d).Error; err != nil {
		return DeviceView{}, fmt.Errorf("device %q: %w", id, ErrNotFound)
	}
	spec := DeviceSpec{Name: d.Name, PublicKey: d.PublicKey}
	if name != nil {
		spec.Name = *name
	}
	if publicKey != nil {
		spec.PublicKey = *publicKey
	}
	if err := spec.check(); err != nil {
		return DeviceView{}, err
	}
	d.Name, d.PublicKey = spec.Name, spec.PublicKey
	if err := s.o.Store.DB.WithContext(ctx).Model(&store.Device{}).Where("id = ?", id).
		Updates(map[string]any{"name": d.Name, "public_key": d.PublicKey}).Error; err != nil {
		return DeviceView{}, err
	}
	return deviceView(d), nil
}

// RevokeDevice revokes a device of user and every session on it.
func (s *Service) RevokeDevice(ctx context.Context, user, id string) error {
	r := s.o.Store.DB.WithContext(ctx).Model(&store.Device{}).Where("id = ? AND user_id = ? AND revoked_at = 0", id, user).
		Update("revoked_at", s.o.Now().UnixMilli())
	if r.Error != nil {
		return r.Error
	}
	if r.RowsAffected == 0 {
		return fmt.Errorf("device %q: %w", id, ErrNotFound)
	}
	s.o.Events.Emit(ctx, secevent.Event{Type: secevent.DeviceRevoked, Target: id, TargetKind: "device", Outcome: secevent.Success,
		Details: map[string]string{"user": user}})
	_, err := s.revokeSessions(ctx, RevokeDevice, func(q *gorm.DB) *gorm.DB { return q.Where("device_id = ?", id) })
	return err
}

// deviceFor returns the device a login binds its session to: the named one
// (it must be the user's and not revoked) or a new one.
func (s *Service) deviceFor(ctx context.Context, user string, spec DeviceSpec, now int64) (store.Device, error) {
	db := s.o.Store.DB.WithContext(ctx)
	if spec.ID != "" {
		rename := strings.TrimSpace(spec.Name) != ""
		if err := spec.check(); err != nil {
			return store.Device{}, err
		}
		var d store.Device
		if err := db.Where("id = ? AND user_id = ? AND revoked_at = 0", spec.ID, user).Take(&d).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return d, &InputError{fmt.Sprintf("device %q is not one of your active devices", spec.ID)}
			}
			return d, err
		}
		upd := map[string]any{"last_seen_at": now}
		if spec.PublicKey != "" {
			upd["public_key"] = spec.PublicKey
		}
		if rename {
			upd["name"] = spec.Name
		}
		return d, db.Model(&store.Device{}).Where("id = ?", d.ID).Updates(upd).Error
	}
	if err := spec.check(); err != nil {
		return store.Device{}, err
	}
	d := store.Device{ID: uuid.NewString(), UserID: user, Name: spec.Name, Platform: spec.Platform, PublicKey: spec.PublicKey,
		CreatedAt: now, LastSeenAt: now}
	return d, db.Create(&d).Error
}

// Seen records that the session's device is active (a WebSocket opened). It
// writes at most once a minute per device.
func (s *Service) Seen(ctx context.Context, id Identity) {
	if id.DeviceID == "" {
		return
	}
	now := s.o.Now()
	s.seenMu.Lock()
	last := s.seen[id.DeviceID]
	if now.Sub(last) < time.Minute {
		s.seenMu.Unlock()
		return
	}
	if len(s.seen) > 100000 {
		clear(s.seen)
	}
	s.seen[id.DeviceID] = now
	s.seenMu.Unlock()
	ms := now.UnixMilli()
	db := s.o.Store.DB.WithContext(ctx)
	if err := db.Model(&store.Device{}).Where("id = ?", id.DeviceID).Update("last_seen_at", ms).Error; err != nil {
		s.o.Logger.Warn("record device last seen", "device", id.DeviceID, "err", err)
	}
	_ = db.Model(&store.Session{}).Where("id = ?", id.SessionID).Update("last_seen_at", ms).Error
}
