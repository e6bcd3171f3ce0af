package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SecurityEvent is one entry of the security event outbox (core/secevent).
// IDs are gap-free and increase in commit order: AppendSecurityEvents takes
// them from SecurityEventSeq under that row's lock, which it holds until its
// transaction commits, so a reader never sees id n+1 before id n.
type SecurityEvent struct {
	ID         int64  `gorm:"primaryKey;autoIncrement:false;index:idx_secev_type,priority:2;index:idx_secev_actor,priority:2"`
	At         int64  `gorm:"not null"`
	Type       string `gorm:"size:64;not null;index:idx_secev_type,priority:1"`
	Actor      string `gorm:"size:128;not null;default:'';index:idx_secev_actor,priority:1"`
	Target     string `gorm:"size:256;not null;default:''"`
	TargetKind string `gorm:"size:32;not null;default:''"`
	ClientAddr string `gorm:"size:64;not null;default:''"`
	UserAgent  string `gorm:"size:256;not null;default:''"`
	Outcome    string `gorm:"size:16;not null;default:''"`
	// Details is a JSON object of strings ("{}" when empty).
	Details string `gorm:"not null;default:'{}'"`
}

// SecurityEventSeq is the one-row counter of security event ids.
type SecurityEventSeq struct {
	ID     int   `gorm:"primaryKey;autoIncrement:false"`
	LastID int64 `gorm:"not null;default:0"`
}

// SecurityCursor is a plugin's position in the security event stream: the
// id of the last event it acknowledged.
type SecurityCursor struct {
	Plugin    string `gorm:"primaryKey;size:64"`
	LastID    int64  `gorm:"not null"`
	UpdatedAt int64  `gorm:"not null"`
}

// AppendSecurityEvents assigns the next ids to evs (in order, setting their
// ID) and writes them in one transaction. It returns the last id assigned.
func (s *Store) AppendSecurityEvents(ctx context.Context, evs []SecurityEvent) (int64, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	var last int64
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The UPDATE locks the counter row until commit: a concurrent
		// appender (another node on Postgres) waits here and then reads the
		// committed value, so ids follow commit order without gaps.
		if err := tx.Raw("UPDATE security_event_seqs SET last_id = last_id + ? WHERE id = 1 RETURNING last_id", len(evs)).Scan(&last).Error; err != nil {
			return fmt.Errorf("take %d security event ids: %w", len(evs), err)
		}
		if last < int64(len(evs)) {
			return fmt.Errorf("take %d security event ids: counter row missing", len(evs))
		}
		for i := range evs {
			evs[i].ID = last - int64(len(evs)) + 1 + int64(i)
			if evs[i].Details == "" {
				evs[i].Details = "{}"
			}
		}
		if err := tx.CreateInBatches(&evs, insertChunk).Error; err != nil {
			return fmt.Errorf("insert %d security events: %w", len(evs), err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return last, nil
}

// SecurityQuery selects security events. With After set (or Before unset
// and Newest false) events come oldest first from After; with Newest they
// come newest first, below Before when it is set.
type SecurityQuery struct {
	After  int64
	Before int64
	Newest bool
	Limit  int
	Type   string
	Actor  string
}

// SecurityEvents returns the events q selects.
func (s *Store) SecurityEvents(ctx context.Context, q SecurityQuery) ([]SecurityEvent, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	db := s.DB.WithContext(ctx).Limit(q.Limit)
	if q.Type != "" {
		db = db.Where("type = ?", q.Type)
	}
	if q.Actor != "" {
		db = db.Where("actor = ?", q.Actor)
	}
	if q.Newest {
		if q.Before > 0 {
			db = db.Where("id < ?", q.Before)
		}
		db = db.Order("id DESC")
	} else {
		db = db.Where("id > ?", q.After).Order("id")
	}
	var out []SecurityEvent
	if err := db.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("read security events %+v: %w", q, err)
	}
	return out, nil
}

// SecurityEventBounds returns the oldest retained id (0 when the outbox is
// empty) and the last id ever assigned.
func (s *Store) SecurityEventBounds(ctx context.Context) (oldest, last int64, err error) {
	db := s.DB.WithContext(ctx)
	var o struct{ Oldest *int64 }
	if err := db.Model(&SecurityEvent{}).Select("MIN(id) AS oldest").Scan(&o).Error; err != nil {
		return 0, 0, fmt.Errorf("read oldest security event: %w", err)
	}
	if err := db.Model(&SecurityEventSeq{}).Where("id = 1").Select("last_id").Scan(&last).Error; err != nil {
		return 0, 0, fmt.Errorf("read security event counter: %w", err)
	}
	if o.Oldest != nil {
		oldest = *o.Oldest
	}
	return oldest, last, nil
}

// PruneSecurityEvents deletes events with ids up to upto, at most chunk at a
// time from the oldest (so that no one statement holds the table for long).
// It returns how many it deleted.
func (s *Store) PruneSecurityEvents(ctx context.Context, upto, chunk int64) (int64, error) {
	oldest, _, err := s.SecurityEventBounds(ctx)
	if err != nil || oldest == 0 {
		return 0, err
	}
	var n int64
	for from := oldest; from <= upto; from += chunk {
		cut := min(from+chunk-1, upto)
		r := s.DB.WithContext(ctx).Where("id <= ?", cut).Delete(&SecurityEvent{})
		if r.Error != nil {
			return n, fmt.Errorf("prune security events up to %d: %w", cut, r.Error)
		}
		n += r.RowsAffected
	}
	return n, nil
}

// SecurityCursorOf returns plugin's cursor. A plugin without one gets one
// at start: the event before the oldest retained one (or the last id ever
// assigned, when the outbox is empty), so that it reads every event the
// outbox still holds.
func (s *Store) SecurityCursorOf(ctx context.Context, plugin string) (int64, error) {
	db := s.DB.WithContext(ctx)
	var c SecurityCursor
	err := db.Where("plugin = ?", plugin).Take(&c).Error
	if err == nil {
		return c.LastID, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, fmt.Errorf("read security cursor of %s: %w", plugin, err)
	}
	oldest, last, err := s.SecurityEventBounds(ctx)
	if err != nil {
		return 0, err
	}
	at := last
	if oldest > 0 {
		at = oldest - 1
	}
	c = SecurityCursor{Plugin: plugin, LastID: at, UpdatedAt: Now()}
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&c).Error; err != nil {
		return 0, fmt.Errorf("create security cursor of %s: %w", plugin, err)
	}
	if err := db.Where("plugin = ?", plugin).Take(&c).Error; err != nil {
		return 0, fmt.Errorf("read security cursor of %s: %w", plugin, err)
	}
	return c.LastID, nil
}

// AdvanceSecurityCursor moves plugin's cursor forward to after; it never
// moves it back (another node may have delivered further).
func (s *Store) AdvanceSecurityCursor(ctx context.Context, plugin string, after int64) error {
	err := s.DB.WithContext(ctx).Model(&SecurityCursor{}).Where("plugin = ? AND last_id < ?", plugin, after).
		Updates(map[string]any{"last_id": after, "updated_at": Now()}).Error
	if err != nil {
		return fmt.Errorf("advance security cursor of %s to %d: %w", plugin, after, err)
	}
	return nil
}
