package chat

import (
	"errors"
	"fmt"
	"time"

	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Error is a failure the caller can show: a protocol error code and a
// message for the user. Gateway and REST map it to an error frame or body.
type Error struct {
	Code         string
	Message      string
	RetryAfterMs int64
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError maps any error to an *Error; unknown errors become internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var oe *store.OpError
	if errors.As(err, &oe) {
		return &Error{Code: oe.Code, Message: oe.Msg}
	}
	if errors.Is(err, store.ErrBadText) {
		return &Error{Code: protocol.CodeBadRequest, Message: err.Error()}
	}
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Code: protocol.CodeNotFound, Message: "not found"}
	}
	if errors.Is(err, store.ErrClosed) {
		return &Error{Code: protocol.CodeUnavailable, Message: "server is shutting down"}
	}
	return &Error{Code: protocol.CodeInternal, Message: "internal error"}
}

// RateLimited is a rate_limited error that says when to retry.
func RateLimited(wait time.Duration, format string, args ...any) *Error {
	ms := wait.Milliseconds()
	if wait > time.Duration(ms)*time.Millisecond || ms == 0 {
		ms++ // round up: retrying earlier would be refused again
	}
	return &Error{Code: protocol.CodeRateLimited, Message: fmt.Sprintf(format, args...), RetryAfterMs: ms}
}
