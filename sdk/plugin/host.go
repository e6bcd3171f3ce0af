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

// apiErr maps gRPC status codes to the SDK's sentinel errors; the status
// stays reachable (status.Code(err)) for codes without a sentinel.
func apiErr(call string, err error) error {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err)
	e := &hostError{st: st, msg: fmt.Sprintf("%s: %s", call, st.Message())}
	switch st.Code() {
	case codes.PermissionDenied:
		e.sentinel = ErrPermissionDenied
	case codes.NotFound:
		e.sentinel = ErrNotFound
	case codes.AlreadyExists:
		e.sentinel = ErrExists
	}
	if e.sentinel != nil {
		e.msg = fmt.Sprintf("%s: %v: %s", call, e.sentinel, st.Message())
	}
	return e
}

// hostError is a failed host-API call.
type hostError struct {
	st       *status.Status
	sentinel error
	msg      string
}

func (e *hostError) Error() string              { return e.msg }
func (e *hostError) Unwrap() error              { return e.sentinel }
func (e *hostError) GRPCStatus() *status.Status { return e.st }

// LogLevel writes one line to the core's log, tagged with the plugin's id;
// attrs are key/value pairs (a shorthand for Log).
func (h *Host) LogLevel(ctx context.Context, level slog.Level, msg string, attrs ...any) error {
	r := &pb.LogRequest{Level: level.String(), Message: msg, Attrs: map[string]string{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		r.Attrs[fmt.Sprint(attrs[i])] = fmt.Sprint(attrs[i+1])
	}
	return h.Log(ctx, r)
}

// KV is the plugin's own key-value namespace in the core database (grant:
// kv), with Go-shaped arguments (the KV* methods are the raw calls). Keys
// are up to 256 bytes, values up to 1 MiB.
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
func (kv KV) List(ctx context.Context, prefix, after string, limit int) ([]*KVEntry, error) {
	r, err := kv.h.c.KVList(ctx, &pb.KVListRequest{Prefix: prefix, After: after, Limit: int32(limit)})
	if err != nil {
		return nil, apiErr("kv list "+prefix, err)
	}
	return r.Entries, nil
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
