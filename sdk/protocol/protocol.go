// Package protocol holds the frame types of Unhidra protocol v1: JSON text
// frames over WebSocket, one message per frame. The core, the Go client, bots
// and the load generator share these types so that there is one definition of
// the wire format. docs/protocol.md is the prose version of this file.
package protocol

import "encoding/json"

// Subprotocol is the WebSocket subprotocol a server answers with.
const Subprotocol = "unhidra.v1"

// BearerPrefix prefixes an access token offered as a subprotocol by browsers,
// which cannot set an Authorization header on a WebSocket handshake.
const BearerPrefix = "bearer."

// Client → server frame types.
const (
	TypeSend   = "send"
	TypeEdit   = "edit"
	TypeDelete = "delete"
	TypeReact  = "react"
	TypeJoin   = "join"
	TypeLeave  = "leave"
	TypeSync   = "sync"
	TypeTyping = "typing"
	TypeRead   = "read"
	TypePing   = "ping"
	// TypePlugin is a frame in a plugin's namespace, answered by that plugin.
	TypePlugin = "plugin"
)

// Server → client frame types.
const (
	TypeAck      = "ack"
	TypeMessage  = "message"
	TypeEdited   = "edited"
	TypeDeleted  = "deleted"
	TypeReaction = "reaction"
	TypeReceipt  = "receipt"
	TypePresence = "presence"
	TypeSynced   = "synced"
	TypeJoined   = "joined"
	TypeLeft     = "left"
	TypePong     = "pong"
	TypeError    = "error"
	TypeGoodbye  = "goodbye"
	// TypePluginReply answers a TypePlugin frame (to its sender only).
	TypePluginReply = "plugin.reply"
	// TypePluginEvent is an event a plugin published to a room, a user or
	// one session.
	TypePluginEvent = "plugin.event"
)

// Error codes: a closed list. Every error frame and every REST error body
// carries exactly one of these.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeRateLimited  = "rate_limited"
	CodeTooLarge     = "too_large"
	CodeConflict     = "conflict"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// Codes lists every error code, in documentation order.
var Codes = []string{CodeBadRequest, CodeUnauthorized, CodeForbidden, CodeNotFound,
	CodeRateLimited, CodeTooLarge, CodeConflict, CodeUnavailable, CodeInternal}

// Goodbye reasons.
const (
	ReasonShutdown     = "shutdown"
	ReasonSlowConsumer = "slow_consumer"
	ReasonRevoked      = "revoked"
	ReasonIdle         = "idle_timeout"
	ReasonPolicy       = "policy"
)

// ClientFrame is any frame a client sends. Which fields matter depends on
// Type; see docs/protocol.md. Pointers distinguish "absent" from zero.
type ClientFrame struct {
	Type   string          `json:"type"`
	Ref    string          `json:"ref,omitempty"`
	Room   string          `json:"room,omitempty"`
	ID     string          `json:"id,omitempty"`
	Text   *string         `json:"text,omitempty"`
	Thread string          `json:"thread,omitempty"`
	Meta   json.RawMessage `json:"meta,omitempty"`
	Emoji  string          `json:"emoji,omitempty"`
	On     *bool           `json:"on,omitempty"`
	After  *int64          `json:"after,omitempty"`
	Limit  int             `json:"limit,omitempty"`
	Seq    *int64          `json:"seq,omitempty"`
	// Plugin, Op and Data make a TypePlugin frame: the plugin whose
	// namespace it is in, the operation, and any JSON value.
	Plugin string          `json:"plugin,omitempty"`
	Op     string          `json:"op,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// Frame is any frame the server sends. One struct keeps encoding simple and
// lets clients decode every frame with one Unmarshal.
type Frame struct {
	Type         string          `json:"type"`
	Ref          string          `json:"ref,omitempty"`
	Room         string          `json:"room,omitempty"`
	ID           string          `json:"id,omitempty"`
	Seq          int64           `json:"seq,omitempty"`
	From         string          `json:"from,omitempty"`
	User         string          `json:"user,omitempty"`
	Text         *string         `json:"text,omitempty"`
	Thread       string          `json:"thread,omitempty"`
	Meta         json.RawMessage `json:"meta,omitempty"`
	Emoji        string          `json:"emoji,omitempty"`
	On           *bool           `json:"on,omitempty"`
	TS           int64           `json:"ts,omitempty"`
	Status       string          `json:"status,omitempty"`
	Upto         int64           `json:"upto,omitempty"`
	More         bool            `json:"more,omitempty"`
	Code         string          `json:"code,omitempty"`
	Message      string          `json:"message,omitempty"`
	RetryAfterMs int64           `json:"retry_after_ms,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	ReconnectMs  int64           `json:"reconnect_after_ms,omitempty"`
	Duplicate    bool            `json:"duplicate,omitempty"`
	// Plugin, Name and Data carry plugin.reply and plugin.event.
	Plugin string          `json:"plugin,omitempty"`
	Name   string          `json:"name,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// Message is a stored message as REST returns it.
type Message struct {
	ID        string              `json:"id"`
	Room      string              `json:"room"`
	Seq       int64               `json:"seq"`
	From      string              `json:"from"`
	Text      string              `json:"text"`
	Thread    string              `json:"thread,omitempty"`
	Meta      json.RawMessage     `json:"meta,omitempty"`
	TS        int64               `json:"ts"`
	EditedTS  int64               `json:"edited_ts,omitempty"`
	Deleted   bool                `json:"deleted,omitempty"`
	Reactions map[string][]string `json:"reactions,omitempty"`
}

// ErrorBody is the JSON body of every REST error.
type ErrorBody struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMs int64  `json:"retry_after_ms,omitempty"`
}

// ClientTypes lists every client → server frame type of protocol v1.
var ClientTypes = []string{TypeSend, TypeEdit, TypeDelete, TypeReact, TypeJoin, TypeLeave, TypeSync, TypeTyping, TypeRead, TypePing, TypePlugin}

// ValidPluginID reports whether s is a plugin id: 1–32 of a-z, 0-9 and '-',
// starting with a letter (plugins.yaml `id`, a plugin frame's `plugin`).
func ValidPluginID(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidPluginName reports whether s is an operation or event name in a
// plugin's namespace: 1–64 of a-z, 0-9, '.', '_' and '-'.
func ValidPluginName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
