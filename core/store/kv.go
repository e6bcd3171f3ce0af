package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// PluginKV is one key of a plugin's key-value namespace. ExpiresAt is unix
// milliseconds, 0 for never; expired rows read as absent and are swept.
type PluginKV struct {
	Plugin    string `gorm:"primaryKey;size:64"`
	Key       string `gorm:"primaryKey;size:256"`
	Value     []byte `gorm:"not null"`
	ExpiresAt int64  `gorm:"not null;default:0;index"`
}

// KV limits.
const (
	MaxKVKey   = 256
	MaxKVValue = 1 << 20
)

func checkKV(key string, value []byte) error {
	if key == "" || len(key) > MaxKVKey {
		return &OpError{Code: "bad_request", Msg: fmt.Sprintf("kv key must be 1–%d bytes, got %d", MaxKVKey, len(key))}
	}
	if err := CheckText("kv key", key); err != nil {
		return &OpError{Code: "bad_request", Msg: err.Error()}
	}
	if len(value) > MaxKVValue {
		return &OpError{Code: "too_large", Msg: fmt.Sprintf("kv value is %d bytes; the limit is %d", len(value), MaxKVValue)}
	}
	return nil
}

func live(now int64) func(*gorm.DB) *gorm.DB {
	return func(db *gorm.DB) *gorm.DB { return db.Where("expires_at = 0 OR expires_at > ?", now) }
}

func expiry(now, ttlMs int64) int64 {
	if ttlMs <= 0 {
		return 0
	}
	return now + ttlMs
}

// KVGet returns plugin's value for key; ErrNotFound when absent or expired.
func (s *Store) KVGet(ctx context.Context, plugin, key string) ([]byte, error) {
	var row PluginKV
	err := s.DB.WithContext(ctx).Scopes(live(Now())).Where("plugin = ? AND key = ?", plugin, key).Take(&row).Error
	if err != nil {
		return nil, notFound(err)
	}
	return row.Value, nil
}

// KVSet stores value (ttlMs 0: no expiry).
func (s *Store) KVSet(ctx context.Context, plugin, key string, value []byte, ttlMs int64) error {
	if err := checkKV(key, value); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	row := PluginKV{Plugin: plugin, Key: key, Value: value, ExpiresAt: expiry(Now(), ttlMs)}
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "plugin"}, {Name: "key"}},
		DoUpdates: clause.AssignmentColumns([]string{"value", "expires_at"}),
	}).Create(&row).Error
}

// KVCompareAndSet stores value only if key holds old (or is absent, when
// oldAbsent). It reports whether it stored. The check and the write are one
// conditional statement, so concurrent callers cannot both win.
func (s *Store) KVCompareAndSet(ctx context.Context, plugin, key string, old []byte, oldAbsent bool, value []byte, ttlMs int64) (bool, error) {
	if err := checkKV(key, value); err != nil {
		return false, err
	}
	if value == nil {
		value = []byte{}
	}
	now := Now()
	db := s.DB.WithContext(ctx)
	if !oldAbsent {
		if old == nil {
			old = []byte{}
		}
		res := db.Model(&PluginKV{}).Scopes(live(now)).Where("plugin = ? AND key = ? AND value = ?", plugin, key, old).
			Updates(map[string]any{"value": value, "expires_at": expiry(now, ttlMs)})
		return res.RowsAffected == 1, res.Error
	}
	swapped := false
	err := db.Transaction(func(tx *gorm.DB) error {
		// An expired row counts as absent: clear it first.
		if err := tx.Where("plugin = ? AND key = ? AND expires_at <> 0 AND expires_at <= ?", plugin, key, now).Delete(&PluginKV{}).Error; err != nil {
			return err
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&PluginKV{Plugin: plugin, Key: key, Value: value, ExpiresAt: expiry(now, ttlMs)})
		swapped = res.RowsAffected == 1
		return res.Error
	})
	return swapped, err
}

// KVDelete removes key; an absent key is not an error.
func (s *Store) KVDelete(ctx context.Context, plugin, key string) error {
	return s.DB.WithContext(ctx).Where("plugin = ? AND key = ?", plugin, key).Delete(&PluginKV{}).Error
}

// KVList returns up to limit live entries with the prefix, in key order,
// with keys greater than after.
func (s *Store) KVList(ctx context.Context, plugin, prefix, after string, limit int) ([]PluginKV, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var rows []PluginKV
	q := s.DB.WithContext(ctx).Scopes(live(Now())).Where("plugin = ?", plugin)
	if prefix != "" {
		q = q.Where("key LIKE ? ESCAPE '\\'", escapeLike(prefix)+"%")
	}
	if after != "" {
		q = q.Where("key > ?", after)
	}
	err := q.Order("key").Limit(limit).Find(&rows).Error
	return rows, err
}

// KVSweep deletes expired keys of every plugin and returns how many.
func (s *Store) KVSweep(ctx context.Context) (int64, error) {
	res := s.DB.WithContext(ctx).Where("expires_at <> 0 AND expires_at <= ?", Now()).Delete(&PluginKV{})
	return res.RowsAffected, res.Error
}

// KVDeletePlugin drops a plugin's whole namespace.
func (s *Store) KVDeletePlugin(ctx context.Context, plugin string) error {
	if plugin == "" {
		return errors.New("kv: empty plugin id")
	}
	return s.DB.WithContext(ctx).Where("plugin = ?", plugin).Delete(&PluginKV{}).Error
}

// EnsureBot returns the bot account of a plugin, creating it on first use.
// Its username (bot:<id>) cannot be registered by people, and its password
// hash matches no password, so nobody can log in as it.
func (s *Store) EnsureBot(ctx context.Context, id, username string) (User, error) {
	u := User{ID: id, Username: username, PasswordHash: "!", Role: "bot", CreatedAt: Now()}
	err := s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&u).Error
	if err != nil {
		return User{}, fmt.Errorf("create bot %s: %w", username, err)
	}
	return s.UserByID(ctx, id)
}
