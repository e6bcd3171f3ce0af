package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

// CreateUser inserts u. A taken username or email is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	err := s.DB.WithContext(ctx).Create(u).Error
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// ErrConflict is returned when a unique value is already taken.
var ErrConflict = errors.New("already exists")

// IsUniqueViolation reports whether err is a unique-constraint violation
// (for callers that insert inside their own transaction).
func IsUniqueViolation(err error) bool { return isUniqueViolation(err) }

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") ||
		strings.Contains(msg, "duplicate key value")
}

// UserByID loads a user.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	var u User
	return u, notFound(s.DB.WithContext(ctx).Where("id = ?", id).Take(&u).Error)
}

// UserByLogin finds a user by username or email (case-insensitive).
func (s *Store) UserByLogin(ctx context.Context, login string) (User, error) {
	var u User
	l := strings.ToLower(login)
	return u, notFound(s.DB.WithContext(ctx).Where("username = ? OR email = ?", l, l).Take(&u).Error)
}

// CountUsers returns the number of accounts of people (plugin bots excluded).
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	return n, s.DB.WithContext(ctx).Model(&User{}).Where("role <> ?", "bot").Count(&n).Error
}

// ListUsers returns users whose username starts with prefix, sorted.
func (s *Store) ListUsers(ctx context.Context, prefix string, limit int) ([]User, error) {
	var us []User
	q := s.DB.WithContext(ctx).Order("username").Limit(limit)
	if prefix != "" {
		q = q.Where("username LIKE ?", escapeLike(strings.ToLower(prefix))+"%")
	}
	return us, q.Find(&us).Error
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// CreateRoom inserts a room and its initial members in one transaction. A
// direct room whose DirectKey exists already returns that room and ErrConflict.
func (s *Store) CreateRoom(ctx context.Context, r *Room, members []Member) error {
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(r).Error; err != nil {
			if isUniqueViolation(err) && r.DirectKey != nil {
				return ErrConflict
			}
			return err
		}
		if len(members) > 0 {
			return tx.Create(&members).Error
		}
		return nil
	})
	if errors.Is(err, ErrConflict) {
		// Look the existing room up outside the failed transaction (Postgres
		// refuses statements in an aborted one) and into a fresh value: r
		// already has its new ID, which gorm would add to the condition.
		var existing Room
		if e := s.DB.WithContext(ctx).Where("direct_key = ?", *r.DirectKey).Take(&existing).Error; e != nil {
			return fmt.Errorf("load existing direct room %s: %w", *r.DirectKey, e)
		}
		*r = existing
	}
	return err
}

// RoomByID loads a room.
func (s *Store) RoomByID(ctx context.Context, id string) (Room, error) {
	var r Room
	return r, notFound(s.DB.WithContext(ctx).Where("id = ?", id).Take(&r).Error)
}

// SpaceByID loads a space.
func (s *Store) SpaceByID(ctx context.Context, id string) (Space, error) {
	var sp Space
	return sp, notFound(s.DB.WithContext(ctx).Where("id = ?", id).Take(&sp).Error)
}

// CreateSpace inserts a space.
func (s *Store) CreateSpace(ctx context.Context, sp *Space) error {
	return s.DB.WithContext(ctx).Create(sp).Error
}

// ListSpaces returns every space of an org.
func (s *Store) ListSpaces(ctx context.Context, org string) ([]Space, error) {
	var out []Space
	return out, s.DB.WithContext(ctx).Where("org_id = ?", org).Order("name").Find(&out).Error
}

// RoomsOf returns the rooms userID is a member of, with the membership.
func (s *Store) RoomsOf(ctx context.Context, userID string) ([]Room, error) {
	var rs []Room
	err := s.DB.WithContext(ctx).Joins("JOIN members ON members.room_id = rooms.id").
		Where("members.user_id = ?", userID).Order("rooms.name").Find(&rs).Error
	return rs, err
}

// PublicRooms lists public rooms (for discovery), optionally in one space.
func (s *Store) PublicRooms(ctx context.Context, space string, limit int) ([]Room, error) {
	var rs []Room
	q := s.DB.WithContext(ctx).Where("kind = ?", KindPublic).Order("name").Limit(limit)
	if space != "" {
		q = q.Where("space_id = ?", space)
	}
	return rs, q.Find(&rs).Error
}

// Members lists a room's members.
func (s *Store) Members(ctx context.Context, room string) ([]Member, error) {
	var ms []Member
	return ms, s.DB.WithContext(ctx).Where("room_id = ?", room).Order("joined_at").Find(&ms).Error
}

// Membership loads one membership.
func (s *Store) Membership(ctx context.Context, room, user string) (Member, error) {
	var m Member
	return m, notFound(s.DB.WithContext(ctx).Where("room_id = ? AND user_id = ?", room, user).Take(&m).Error)
}

// AddMember inserts a membership; adding an existing member is not an error.
func (s *Store) AddMember(ctx context.Context, m Member) error {
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&m).Error
}

// RemoveMember deletes a membership and reports whether one existed.
func (s *Store) RemoveMember(ctx context.Context, room, user string) (bool, error) {
	r := s.DB.WithContext(ctx).Where("room_id = ? AND user_id = ?", room, user).Delete(&Member{})
	return r.RowsAffected > 0, r.Error
}

// MarkRead advances a member's read marker; it never moves backwards.
func (s *Store) MarkRead(ctx context.Context, room, user string, seq int64) error {
	return s.DB.WithContext(ctx).Model(&Member{}).
		Where("room_id = ? AND user_id = ? AND last_read < ?", room, user, seq).
		Update("last_read", seq).Error
}

// Events returns up to limit events of room with seq > after, in order.
func (s *Store) Events(ctx context.Context, room string, after int64, limit int) ([]Event, error) {
	var evs []Event
	err := s.DB.WithContext(ctx).Where("room_id = ? AND seq > ?", room, after).
		Order("seq").Limit(limit).Find(&evs).Error
	return evs, err
}

// LastSeq returns the room's highest seq.
func (s *Store) LastSeq(ctx context.Context, room string) (int64, error) {
	r, err := s.RoomByID(ctx, room)
	return r.LastSeq, err
}

// HistoryQuery selects messages of one room by seq window.
type HistoryQuery struct {
	Room          string
	After, Before int64 // exclusive bounds; 0 means unbounded
	// FromStart pages forward from After even when After is 0 (the oldest
	// messages first); otherwise no After means the newest page.
	FromStart bool
	Limit     int
}

// History returns messages in ascending seq. With only Before set it returns
// the newest Limit messages before it (paging backwards), still ascending.
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]Message, error) {
	var ms []Message
	db := s.DB.WithContext(ctx).Where("room_id = ?", q.Room)
	if q.After > 0 {
		db = db.Where("seq > ?", q.After)
	}
	if q.Before > 0 {
		db = db.Where("seq < ?", q.Before)
	}
	desc := q.After == 0 && !q.FromStart // no lower bound: newest first, then reverse
	if desc {
		db = db.Order("seq DESC")
	} else {
		db = db.Order("seq")
	}
	if err := db.Limit(q.Limit).Find(&ms).Error; err != nil {
		return nil, err
	}
	if desc {
		for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
			ms[i], ms[j] = ms[j], ms[i]
		}
	}
	return ms, nil
}

// Reactions returns the reactions on the given messages: message → emoji → users.
func (s *Store) Reactions(ctx context.Context, ids []string) (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rs []Reaction
	if err := s.DB.WithContext(ctx).Where("message_id IN ?", ids).Order("at").Find(&rs).Error; err != nil {
		return nil, err
	}
	for _, r := range rs {
		if out[r.MessageID] == nil {
			out[r.MessageID] = map[string][]string{}
		}
		out[r.MessageID][r.Emoji] = append(out[r.MessageID][r.Emoji], r.UserID)
	}
	return out, nil
}

// MessageByID loads a message.
func (s *Store) MessageByID(ctx context.Context, id string) (Message, error) {
	var m Message
	return m, notFound(s.DB.WithContext(ctx).Where("id = ?", id).Take(&m).Error)
}

// Edits returns the edit history of a message, oldest first.
func (s *Store) Edits(ctx context.Context, id string) ([]MessageEdit, error) {
	var es []MessageEdit
	return es, s.DB.WithContext(ctx).Where("message_id = ?", id).Order("seq").Find(&es).Error
}

// Search finds messages matching the words of q in rooms userID belongs to,
// newest first. Only rooms the user is a member of are searched.
func (s *Store) Search(ctx context.Context, userID, q string, limit int) ([]Message, error) {
	terms := searchTerms(q)
	if len(terms) == 0 {
		return nil, nil
	}
	var ms []Message
	db := s.DB.WithContext(ctx).Model(&Message{}).
		Joins("JOIN members ON members.room_id = messages.room_id AND members.user_id = ?", userID).
		Where("messages.deleted_at = 0")
	if s.Dialect == SQLite {
		// Each term is quoted so that FTS5 syntax in user input is inert;
		// the last term also matches as a prefix.
		var b strings.Builder
		for i, t := range terms {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(`"` + t + `"`)
			if i == len(terms)-1 {
				b.WriteByte('*')
			}
		}
		db = db.Where("messages.pk IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)", b.String())
	} else {
		var b strings.Builder
		for i, t := range terms {
			if i > 0 {
				b.WriteString(" & ")
			}
			b.WriteString(t)
			if i == len(terms)-1 {
				b.WriteString(":*")
			}
		}
		db = db.Where("messages.tsv @@ to_tsquery('simple', ?)", b.String())
	}
	err := db.Order("messages.created_at DESC").Limit(limit).Find(&ms).Error
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", q, err)
	}
	return ms, nil
}

// searchTerms splits q into lower-case words of letters and digits, which
// are safe to place in FTS5 and tsquery syntax.
func searchTerms(q string) []string {
	f := strings.FieldsFunc(strings.ToLower(q), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
	if len(f) > 16 {
		f = f[:16]
	}
	return f
}
