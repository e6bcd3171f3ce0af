package store

// Tables. Times that clients see are unix milliseconds (int64) so that SQLite
// and Postgres store and compare them the same way.

// Org is the top of the tenancy tree: org → space → room.
type Org struct {
	ID        string `gorm:"primaryKey;size:36"`
	Name      string `gorm:"size:128;not null"`
	CreatedAt int64  `gorm:"not null"`
}

// Space groups rooms inside an org.
type Space struct {
	ID        string `gorm:"primaryKey;size:36"`
	OrgID     string `gorm:"size:36;not null;index"`
	Name      string `gorm:"size:128;not null"`
	CreatedAt int64  `gorm:"not null"`
}

// User is an account. Role is the global role (superadmin or member) until
// the authorization layer scopes roles per org/space/room.
type User struct {
	ID            string  `gorm:"primaryKey;size:36"`
	Username      string  `gorm:"size:64;not null;uniqueIndex"`
	Email         *string `gorm:"size:254;uniqueIndex"`
	PasswordHash  string  `gorm:"size:256;not null"`
	Role          string  `gorm:"size:32;not null;default:member"`
	CreatedAt     int64   `gorm:"not null"`
	DeactivatedAt int64   `gorm:"not null;default:0"`
	// Clearance is the user's ABAC clearance level: a room whose
	// Classification is higher is closed to them (core/authz).
	Clearance int `gorm:"not null;default:0"`
}

// Room kinds.
const (
	KindPublic  = "public"
	KindPrivate = "private"
	KindDirect  = "direct"
	KindGroup   = "group"
)

// Room is a conversation. LastSeq is the highest event seq in the room; the
// committer advances it in the same transaction that writes the events, which
// is what keeps seq gap-free.
type Room struct {
	ID        string  `gorm:"primaryKey;size:36"`
	SpaceID   string  `gorm:"size:36;not null;index"`
	Name      string  `gorm:"size:128;not null"`
	Kind      string  `gorm:"size:16;not null"`
	Topic     string  `gorm:"size:512;not null;default:''"`
	CreatedBy string  `gorm:"size:36;not null"`
	DirectKey *string `gorm:"size:80;uniqueIndex"`
	LastSeq   int64   `gorm:"not null;default:0"`
	CreatedAt int64   `gorm:"not null"`
	// Classification is the room's ABAC level (0 = unclassified); users
	// with a lower Clearance may not read or write it (core/authz).
	Classification int `gorm:"not null;default:0"`
}

// Member is a user's membership of a room.
type Member struct {
	RoomID   string `gorm:"primaryKey;size:36"`
	UserID   string `gorm:"primaryKey;size:36;index"`
	Role     string `gorm:"size:32;not null;default:member"`
	LastRead int64  `gorm:"not null;default:0"`
	JoinedAt int64  `gorm:"not null"`
}

// Message is the current state of a message; Event is the log that sync
// replays. PK is an integer key for the SQLite FTS5 index.
type Message struct {
	PK        int64   `gorm:"primaryKey;autoIncrement"`
	ID        string  `gorm:"size:36;not null;uniqueIndex"`
	RoomID    string  `gorm:"size:36;not null;uniqueIndex:idx_msg_room_seq,priority:1;uniqueIndex:idx_msg_ref,priority:1"`
	Seq       int64   `gorm:"not null;uniqueIndex:idx_msg_room_seq,priority:2"`
	SenderID  string  `gorm:"size:36;not null;uniqueIndex:idx_msg_ref,priority:2"`
	ClientRef *string `gorm:"size:128;uniqueIndex:idx_msg_ref,priority:3"`
	ThreadID  string  `gorm:"size:36;not null;default:'';index"`
	Text      string  `gorm:"not null"`
	Meta      string  `gorm:"not null;default:''"`
	CreatedAt int64   `gorm:"not null"`
	EditedAt  int64   `gorm:"not null;default:0"`
	DeletedAt int64   `gorm:"not null;default:0"`
}

// MessageEdit keeps every earlier text of an edited message.
type MessageEdit struct {
	ID        int64  `gorm:"primaryKey;autoIncrement"`
	MessageID string `gorm:"size:36;not null;index"`
	Seq       int64  `gorm:"not null"`
	EditorID  string `gorm:"size:36;not null"`
	OldText   string `gorm:"not null"`
	At        int64  `gorm:"not null"`
}

// Reaction is one user's emoji on one message.
type Reaction struct {
	MessageID string `gorm:"primaryKey;size:36"`
	UserID    string `gorm:"primaryKey;size:36"`
	Emoji     string `gorm:"primaryKey;size:64"`
	At        int64  `gorm:"not null"`
}

// Event kinds in the room log.
const (
	EventMessage  = "message"
	EventEdited   = "edited"
	EventDeleted  = "deleted"
	EventReaction = "reaction"
)

// Event is one entry of a room's gap-free log. Sync replays events with
// seq > after; a delete scrubs the text of the message's earlier events.
type Event struct {
	RoomID    string `gorm:"primaryKey;size:36"`
	Seq       int64  `gorm:"primaryKey"`
	Kind      string `gorm:"size:16;not null"`
	MessageID string `gorm:"size:36;not null;index"`
	ActorID   string `gorm:"size:36;not null"`
	Text      string `gorm:"not null;default:''"`
	ThreadID  string `gorm:"size:36;not null;default:''"`
	Meta      string `gorm:"not null;default:''"`
	Emoji     string `gorm:"size:64;not null;default:''"`
	On        bool   `gorm:"not null;default:false"`
	At        int64  `gorm:"not null"`
}

// RefreshToken is a server-side session credential, stored hashed. Tokens of
// one login share a Family; reuse of a rotated token revokes the family.
type RefreshToken struct {
	ID        string `gorm:"primaryKey;size:36"`
	Family    string `gorm:"size:36;not null;index"`
	UserID    string `gorm:"size:36;not null;index"`
	Hash      string `gorm:"size:64;not null;uniqueIndex"`
	Device    string `gorm:"size:128;not null;default:''"`
	CreatedAt int64  `gorm:"not null"`
	ExpiresAt int64  `gorm:"not null"`
	UsedAt    int64  `gorm:"not null;default:0"`
	RevokedAt int64  `gorm:"not null;default:0"`
}

// Session is one login: the refresh-token family, bound to one device.
// Access tokens carry its ID as the sid claim; revoking a session makes those
// tokens fail verification and closes the session's live WebSockets.
type Session struct {
	ID         string `gorm:"primaryKey;size:36"`
	UserID     string `gorm:"size:36;not null;index"`
	DeviceID   string `gorm:"size:36;not null;index"`
	IP         string `gorm:"size:64;not null;default:''"`
	UserAgent  string `gorm:"size:256;not null;default:''"`
	CreatedAt  int64  `gorm:"not null"`
	LastSeenAt int64  `gorm:"not null;default:0"`
	ExpiresAt  int64  `gorm:"not null"`
	RevokedAt  int64  `gorm:"not null;default:0;index"`
	// RevokeReason is logout, password_changed, admin, device_revoked,
	// deactivated or refresh_reuse.
	RevokeReason string `gorm:"size:32;not null;default:''"`
}

// Device is a client installation of a user (phone app, browser, bot host).
// PublicKey is the slot for the device's E2EE identity key (set later by the
// E2EE plugin or the client; opaque to the core).
type Device struct {
	ID         string `gorm:"primaryKey;size:36"`
	UserID     string `gorm:"size:36;not null;index"`
	Name       string `gorm:"size:128;not null"`
	Platform   string `gorm:"size:64;not null;default:''"`
	PublicKey  string `gorm:"size:4096;not null;default:''"`
	CreatedAt  int64  `gorm:"not null"`
	LastSeenAt int64  `gorm:"not null;default:0"`
	RevokedAt  int64  `gorm:"not null;default:0"`
}

// Invite lets someone register while registration is "invite". The token is
// stored hashed; Uses counts registrations made with it.
type Invite struct {
	ID        string `gorm:"primaryKey;size:36"`
	Hash      string `gorm:"size:64;not null;uniqueIndex"`
	CreatedBy string `gorm:"size:36;not null;default:''"`
	Note      string `gorm:"size:256;not null;default:''"`
	MaxUses   int    `gorm:"not null;default:1"`
	Uses      int    `gorm:"not null;default:0"`
	CreatedAt int64  `gorm:"not null"`
	ExpiresAt int64  `gorm:"not null"`
	RevokedAt int64  `gorm:"not null;default:0"`
}

// AuthzRule is one Casbin rule (p or g line) of the authorization policy.
// Room memberships are not stored here: they live in Member and core/authz
// reads them as g rules of the room domains.
type AuthzRule struct {
	ID    int64  `gorm:"primaryKey;autoIncrement"`
	Ptype string `gorm:"size:8;not null;index"`
	V0    string `gorm:"size:256;not null;default:''"`
	V1    string `gorm:"size:256;not null;default:''"`
	V2    string `gorm:"size:256;not null;default:''"`
	V3    string `gorm:"size:256;not null;default:''"`
	V4    string `gorm:"size:512;not null;default:''"`
	V5    string `gorm:"size:256;not null;default:''"`
}

// BlockEveryone as Block.Blocked blocks everyone else.
const BlockEveryone = "*"

// Block keeps UserID from being put into rooms by Blocked: a user id, or
// BlockEveryone for anyone but UserID themselves.
type Block struct {
	UserID    string `gorm:"primaryKey;size:36"`
	Blocked   string `gorm:"primaryKey;size:36;index"`
	CreatedAt int64  `gorm:"not null"`
}

// Migration records which schema steps have run.
type Migration struct {
	ID        string `gorm:"primaryKey;size:64"`
	AppliedAt int64  `gorm:"not null"`
}
