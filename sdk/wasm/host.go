package unhidra

import (
	"encoding/json"
	"time"
)

// HostError is a failure reported by the host: a capability that was not
// granted, a rate limit, a refused address, …
type HostError struct{ Msg string }

func (e *HostError) Error() string { return e.Msg }

// Log levels.
const (
	LevelDebug = 0
	LevelInfo  = 1
	LevelWarn  = 2
	LevelError = 3
)

// Log writes to the core's log, tagged with the module.
func Log(level int, msg string) { logMsg(uint32(level), msg) }

// Config returns the module's config from plugins.yaml as JSON.
func Config() ([]byte, error) {
	b, _, err := callConfig()
	return b, err
}

// DecodeConfig unmarshals the module's config into v.
func DecodeConfig(v any) error {
	b, err := Config()
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

// KVGet reads key from the module's namespace. found is false when absent.
// Needs the kv grant.
func KVGet(key string) (value []byte, found bool, err error) { return callKVGet(key) }

// KVSet writes key; ttl 0 means no expiry. Needs the kv grant.
func KVSet(key string, value []byte, ttl time.Duration) error {
	return callKVSet(key, value, ttl.Milliseconds())
}

// KVCompareAndSet writes new only if the current value equals old (nil old
// means "absent"). It reports whether the write happened.
func KVCompareAndSet(key string, old, new []byte, ttl time.Duration) (bool, error) {
	return callKVCAS(key, old, new, ttl.Milliseconds())
}

// KVDelete removes key.
func KVDelete(key string) error { return callKVDelete(key) }

// KVList returns the entries whose keys start with prefix, sorted by key.
func KVList(prefix string) ([]KVEntry, error) {
	b, err := callKVList(prefix)
	if err != nil {
		return nil, err
	}
	var out []KVEntry
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PostMessage posts text to room as the module's bot. Needs the
// messages.post grant (and the room in post_rooms, when that is set);
// rate-limited; the module's own hooks do not see the post. It returns the
// new message id.
func PostMessage(room, text string) (string, error) {
	b, err := callPost(room, text)
	return string(b), err
}

// HTTP performs an outbound request to a host on the module's allow-list.
// Private, loopback and link-local addresses are refused after DNS.
func HTTP(req HTTPRequest) (*HTTPResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	b, err := callHTTP(in)
	if err != nil {
		return nil, err
	}
	var resp HTTPResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
