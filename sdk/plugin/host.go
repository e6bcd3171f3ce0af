package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

// Host is a plugin's typed client of the host API. Every call is checked
// against the plugin's grants in plugins.yaml; a call outside them returns an
// error matching ErrPermissionDenied.
type Host struct {
	c   pb.HostClient
	id  string
	bot string

	mu     sync.Mutex
	config Config
}

// NewHost wraps a Host service client (for tests and for other runtimes; a
// plugin receives its Host in OnActivate).
func NewHost(c pb.HostClient, pluginID, botUserID string, cfg Config) *Host {
	return &Host{c: c, id: pluginID, bot: botUserID, config: cfg}
}

// ID is the plugin's id from plugins.yaml.
func (h *Host) ID() string { return h.id }

// BotUserID is the user id PostMessage posts as.
func (h *Host) BotUserID() string { return h.bot }

func (h *Host) setConfig(c Config) {
	h.mu.Lock()
	h.config = c
	h.mu.Unlock()
}

// Config decodes the plugin's current `config:` into v (strictly; see
// Config.Decode).
func (h *Host) Config(v any) error {
	h.mu.Lock()
	c := h.config
	h.mu.Unlock()
	return c.Decode(v)
}

// apiErr maps gRPC status codes to the SDK's sentinel errors.
func apiErr(call string, err error) error {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.PermissionDenied:
		return fmt.Errorf("%s: %w: %s", call, ErrPermissionDenied, st.Message())
	case codes.NotFound:
		return fmt.Errorf("%s: %w: %s", call, ErrNotFound, st.Message())
	case codes.AlreadyExists:
		return fmt.Errorf("%s: %w: %s", call, ErrExists, st.Message())
	}
	return fmt.Errorf("%s: %s", call, st.Message())
}

// Log writes one line to the core's log, tagged with the plugin's id.
func (h *Host) Log(ctx context.Context, level slog.Level, msg string, attrs ...any) error {
	r := &pb.LogRequest{Level: level.String(), Message: msg, Attrs: map[string]string{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		r.Attrs[fmt.Sprint(attrs[i])] = fmt.Sprint(attrs[i+1])
	}
	_, err := h.c.Log(ctx, r)
	return apiErr("log", err)
}

// Command describes a slash command.
type Command struct {
	Trigger     string // the word after the slash
	Description string
	Hint        string // e.g. "[name]"
}

// RegisterCommand registers a slash command (grant: commands). Call it in
// OnActivate; registrations last until the process stops.
func (h *Host) RegisterCommand(ctx context.Context, c Command) error {
	_, err := h.c.RegisterCommand(ctx, &pb.Command{Trigger: c.Trigger, Description: c.Description, Hint: c.Hint})
	return apiErr("register command /"+c.Trigger, err)
}

// PostMessage posts text to room as the plugin's bot (grant: messages.post).
func (h *Host) PostMessage(ctx context.Context, room, text string) (*Message, error) {
	m, err := h.c.PostMessage(ctx, &pb.PostMessageRequest{Room: room, Text: text})
	if err != nil {
		return nil, apiErr("post message", err)
	}
	return fromPB(m), nil
}

// User is an account as the host API shows it.
type User struct {
	ID, Username, Role string
	Deactivated        bool
	CreatedAt          time.Time
}

// GetUser looks a user up by id (grant: users.read).
func (h *Host) GetUser(ctx context.Context, id string) (*User, error) {
	return h.getUser(ctx, &pb.GetUserRequest{Id: id})
}

// GetUserByName looks a user up by username (grant: users.read).
func (h *Host) GetUserByName(ctx context.Context, username string) (*User, error) {
	return h.getUser(ctx, &pb.GetUserRequest{Username: username})
}

func (h *Host) getUser(ctx context.Context, r *pb.GetUserRequest) (*User, error) {
	u, err := h.c.GetUser(ctx, r)
	if err != nil {
		return nil, apiErr("get user", err)
	}
	return &User{ID: u.Id, Username: u.Username, Role: u.Role, Deactivated: u.Deactivated, CreatedAt: time.UnixMilli(u.CreatedAt)}, nil
}

// Room is a room as the host API shows it.
type Room struct {
	ID, Space, Name, Kind, Topic string
}

// GetRoom looks a room up (grant: rooms.read).
func (h *Host) GetRoom(ctx context.Context, id string) (*Room, error) {
	r, err := h.c.GetRoom(ctx, &pb.GetRoomRequest{Id: id})
	if err != nil {
		return nil, apiErr("get room", err)
	}
	return &Room{ID: r.Id, Space: r.Space, Name: r.Name, Kind: r.Kind, Topic: r.Topic}, nil
}

// Members lists a room's members as user id → room role (grant: rooms.read).
func (h *Host) Members(ctx context.Context, room string) (map[string]string, error) {
	r, err := h.c.ListMembers(ctx, &pb.GetRoomRequest{Id: room})
	if err != nil {
		return nil, apiErr("list members", err)
	}
	out := make(map[string]string, len(r.Members))
	for _, m := range r.Members {
		out[m.UserId] = m.Role
	}
	return out, nil
}

// KV is the plugin's own key-value namespace in the core database (grant:
// kv). Keys are up to 256 bytes, values up to 1 MiB.
func (h *Host) KV() KV { return KV{h: h} }

// KV is returned by Host.KV.
type KV struct{ h *Host }

// Get returns the value of key; found is false when it is absent or expired.
func (kv KV) Get(ctx context.Context, key string) (value []byte, found bool, err error) {
	r, err := kv.h.c.KVGet(ctx, &pb.KVGetRequest{Key: key})
	if err != nil {
		return nil, false, apiErr("kv get "+key, err)
	}
	return r.Value, r.Found, nil
}

// Set stores value under key; ttl 0 means it never expires.
func (kv KV) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := kv.h.c.KVSet(ctx, &pb.KVSetRequest{Key: key, Value: value, TtlMs: ttl.Milliseconds()})
	return apiErr("kv set "+key, err)
}

// CompareAndSet stores value only if key holds old (old == nil: only if key
// is absent). It reports whether it stored.
func (kv KV) CompareAndSet(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	r, err := kv.h.c.KVCompareAndSet(ctx, &pb.KVCompareAndSetRequest{Key: key, OldValue: old, OldAbsent: old == nil,
		NewValue: value, TtlMs: ttl.Milliseconds()})
	if err != nil {
		return false, apiErr("kv compare-and-set "+key, err)
	}
	return r.Swapped, nil
}

// Delete removes key.
func (kv KV) Delete(ctx context.Context, key string) error {
	_, err := kv.h.c.KVDelete(ctx, &pb.KVDeleteRequest{Key: key})
	return apiErr("kv delete "+key, err)
}

// List returns up to limit entries whose key starts with prefix, in key
// order, after the key `after` (for paging; "" starts at the beginning).
func (kv KV) List(ctx context.Context, prefix, after string, limit int) ([]KVEntry, error) {
	r, err := kv.h.c.KVList(ctx, &pb.KVListRequest{Prefix: prefix, After: after, Limit: int32(limit)})
	if err != nil {
		return nil, apiErr("kv list "+prefix, err)
	}
	out := make([]KVEntry, len(r.Entries))
	for i, e := range r.Entries {
		out[i] = KVEntry{Key: e.Key, Value: e.Value}
	}
	return out, nil
}

// KVEntry is one listed key.
type KVEntry struct {
	Key   string
	Value []byte
}

// GetJSON decodes the JSON value of key into v.
func (kv KV) GetJSON(ctx context.Context, key string, v any) (found bool, err error) {
	b, found, err := kv.Get(ctx, key)
	if err != nil || !found {
		return found, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("kv get %s: decode JSON: %w", key, err)
	}
	return true, nil
}

// SetJSON stores v as JSON under key.
func (kv KV) SetJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("kv set %s: encode JSON: %w", key, err)
	}
	return kv.Set(ctx, key, b, ttl)
}

// Event is an event of the plugin's own namespace for PublishEvent. Set
// exactly one of Room, User and Session.
type Event struct {
	Room    string
	User    string
	Session uint64
	// Name: 1–64 of a-z, 0-9, '.', '_', '-'.
	Name string
	// Data is any JSON value of at most 64 KiB (nil: none).
	Data json.RawMessage
}

// PublishEvent sends e to every session in a room, every session of a
// user, or one session; clients receive a plugin.event frame naming this
// plugin. It returns how many sessions took it. Needs grant events.publish.
func (h *Host) PublishEvent(ctx context.Context, e Event) (int, error) {
	r, err := h.c.PublishEvent(ctx, &pb.PublishEventRequest{Room: e.Room, UserId: e.User, SessionId: e.Session,
		Name: e.Name, DataJson: e.Data})
	if err != nil {
		return 0, apiErr("publish event", err)
	}
	return int(r.Delivered), nil
}
