package store

import (
	"context"
	"fmt"

	"gorm.io/gorm/clause"
)

// SetBlock records that user blocks blocked (a user id or BlockEveryone)
// and returns the block; blocking again keeps the first one.
func (s *Store) SetBlock(ctx context.Context, user, blocked string) (Block, error) {
	b := Block{UserID: user, Blocked: blocked, CreatedAt: Now()}
	db := s.DB.WithContext(ctx)
	if err := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&b).Error; err != nil {
		return Block{}, fmt.Errorf("block %s for %s: %w", blocked, user, err)
	}
	var out Block
	return out, db.Where("user_id = ? AND blocked = ?", user, blocked).Take(&out).Error
}

// RemoveBlock deletes a block and reports whether there was one.
func (s *Store) RemoveBlock(ctx context.Context, user, blocked string) (bool, error) {
	r := s.DB.WithContext(ctx).Where("user_id = ? AND blocked = ?", user, blocked).Delete(&Block{})
	return r.RowsAffected > 0, r.Error
}

// Blocks lists user's blocks, oldest first.
func (s *Store) Blocks(ctx context.Context, user string) ([]Block, error) {
	var out []Block
	return out, s.DB.WithContext(ctx).Where("user_id = ?", user).Order("created_at").Order("blocked").Find(&out).Error
}

// Blocking returns those of users who block actor, by name or everyone.
func (s *Store) Blocking(ctx context.Context, actor string, users []string) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	var out []string
	err := s.DB.WithContext(ctx).Model(&Block{}).Where("user_id IN ? AND blocked IN ?", users, []string{actor, BlockEveryone}).
		Distinct().Pluck("user_id", &out).Error
	return out, err
}
