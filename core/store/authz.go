package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// AuthzRules loads every stored policy rule.
func (s *Store) AuthzRules(ctx context.Context) ([]AuthzRule, error) {
	var out []AuthzRule
	return out, s.DB.WithContext(ctx).Order("id").Find(&out).Error
}

// AllMembers loads every room membership (the g rules of room domains).
func (s *Store) AllMembers(ctx context.Context) ([]Member, error) {
	var out []Member
	return out, s.DB.WithContext(ctx).Select("room_id", "user_id", "role").Find(&out).Error
}

// AddAuthzRules inserts rules in one transaction.
func (s *Store) AddAuthzRules(ctx context.Context, rs []AuthzRule) error {
	if len(rs) == 0 {
		return nil
	}
	return s.DB.WithContext(ctx).CreateInBatches(rs, 200).Error
}

// RemoveAuthzRule deletes the rules equal to r (ID ignored) and reports how
// many there were.
func (s *Store) RemoveAuthzRule(ctx context.Context, r AuthzRule) (int64, error) {
	res := s.DB.WithContext(ctx).Where("ptype = ? AND v0 = ? AND v1 = ? AND v2 = ? AND v3 = ? AND v4 = ? AND v5 = ?",
		r.Ptype, r.V0, r.V1, r.V2, r.V3, r.V4, r.V5).Delete(&AuthzRule{})
	return res.RowsAffected, res.Error
}

// RemoveAuthzRulesFiltered deletes rules of ptype whose fields from index
// field on equal values (an empty value matches anything), as Casbin's
// RemoveFilteredPolicy means.
func (s *Store) RemoveAuthzRulesFiltered(ctx context.Context, ptype string, field int, values ...string) error {
	q := s.DB.WithContext(ctx).Where("ptype = ?", ptype)
	cols := []string{"v0", "v1", "v2", "v3", "v4", "v5"}
	for i, v := range values {
		if v != "" && field+i < len(cols) {
			q = q.Where(cols[field+i]+" = ?", v)
		}
	}
	return q.Delete(&AuthzRule{}).Error
}

// ReplaceAuthzRules deletes every rule and inserts rs (SavePolicy).
func (s *Store) ReplaceAuthzRules(ctx context.Context, rs []AuthzRule) error {
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("1 = 1").Delete(&AuthzRule{}).Error; err != nil {
			return err
		}
		if len(rs) == 0 {
			return nil
		}
		return tx.CreateInBatches(rs, 200).Error
	})
}

// MigrationDone reports whether the step id was recorded.
func (s *Store) MigrationDone(ctx context.Context, id string) (bool, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&Migration{}).Where("id = ?", id).Count(&n).Error
	return n > 0, err
}

// MarkMigration records step id (a one-time setup step outside the schema
// list, such as seeding the authorization policy).
func (s *Store) MarkMigration(ctx context.Context, id string) error {
	return s.DB.WithContext(ctx).Create(&Migration{ID: id, AppliedAt: Now()}).Error
}

// FirstSuperadminStep is the step the first person's account claims, in the
// transaction that creates it, to become superadmin.
const FirstSuperadminStep = "first_superadmin"

// ClaimStep records the one-time step id inside tx and reports whether this
// transaction made the claim. Of concurrent transactions claiming one step,
// exactly one gets true, on both backends: on Postgres the others wait for
// its commit and then get false (or the claim, if it rolled back); SQLite
// runs one writing transaction at a time.
func ClaimStep(tx *gorm.DB, id string) (bool, error) {
	r := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&Migration{ID: id, AppliedAt: Now()})
	if r.Error != nil {
		return false, fmt.Errorf("claim step %s: %w", id, r.Error)
	}
	return r.RowsAffected == 1, nil
}

// UserClearances returns the users whose clearance is not 0.
func (s *Store) UserClearances(ctx context.Context) (map[string]int, error) {
	var us []User
	if err := s.DB.WithContext(ctx).Select("id", "clearance").Where("clearance <> 0").Find(&us).Error; err != nil {
		return nil, err
	}
	out := make(map[string]int, len(us))
	for _, u := range us {
		out[u.ID] = u.Clearance
	}
	return out, nil
}

// SetUserClearance sets a user's clearance.
func (s *Store) SetUserClearance(ctx context.Context, id string, level int) error {
	res := s.DB.WithContext(ctx).Model(&User{}).Where("id = ?", id).Update("clearance", level)
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return res.Error
}

// SetUserRole sets the display copy of a user's global role.
func (s *Store) SetUserRole(ctx context.Context, id, role string) error {
	return s.DB.WithContext(ctx).Model(&User{}).Where("id = ?", id).Update("role", role).Error
}

// ListUsersAll returns every user id and role (seeding).
func (s *Store) ListUsersAll(ctx context.Context) ([]User, error) {
	var us []User
	return us, s.DB.WithContext(ctx).Select("id", "role").Find(&us).Error
}

// UpdateRoom sets a room's topic and classification.
func (s *Store) UpdateRoom(ctx context.Context, id, topic string, classification int) error {
	return s.DB.WithContext(ctx).Model(&Room{}).Where("id = ?", id).
		Updates(map[string]any{"topic": topic, "classification": classification}).Error
}

// CreateOrg inserts an org.
func (s *Store) CreateOrg(ctx context.Context, o *Org) error {
	return s.DB.WithContext(ctx).Create(o).Error
}

// OrgByID loads an org.
func (s *Store) OrgByID(ctx context.Context, id string) (Org, error) {
	var o Org
	return o, notFound(s.DB.WithContext(ctx).Where("id = ?", id).Take(&o).Error)
}

// OrgsByID loads the orgs with the given ids (all orgs when ids is nil).
func (s *Store) OrgsByID(ctx context.Context, ids []string) ([]Org, error) {
	var out []Org
	q := s.DB.WithContext(ctx).Order("name")
	if ids != nil {
		if len(ids) == 0 {
			return nil, nil
		}
		q = q.Where("id IN ?", ids)
	}
	return out, q.Find(&out).Error
}

// SetMember inserts a membership or changes its role.
func (s *Store) SetMember(ctx context.Context, m Member) error {
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "room_id"}, {Name: "user_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"role"}),
	}).Create(&m).Error
}

// RoomsOfInOrg returns the rooms of org's spaces that user is a member of.
func (s *Store) RoomsOfInOrg(ctx context.Context, user, org string) ([]string, error) {
	var ids []string
	err := s.DB.WithContext(ctx).Model(&Member{}).
		Joins("JOIN rooms ON rooms.id = members.room_id").
		Joins("JOIN spaces ON spaces.id = rooms.space_id").
		Where("members.user_id = ? AND spaces.org_id = ?", user, org).
		Pluck("members.room_id", &ids).Error
	return ids, err
}
