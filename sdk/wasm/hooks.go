package unhidra

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// hookEntry is one row of the generated hookTable: whether a module
// implements the hook and how to call it with its protojson input.
type hookEntry struct {
	name string
	// verdict: the hook answers a MessageVerdict, so a Rejection error is
	// its REJECT answer.
	verdict    bool
	implements func(p any) bool
	call       func(p any, in []byte) (any, error)
}

// HookNames lists every hook a module can implement, in declaration order.
func HookNames() []string {
	out := make([]string, len(hookTable))
	for i, e := range hookTable {
		out[i] = e.name
	}
	return out
}

// Rejection is the error a verdict hook returns to refuse an action; the
// SDK answers REJECT with Reason, which the user is shown.
type Rejection struct{ Reason string }

func (r *Rejection) Error() string { return "rejected: " + r.Reason }

// Reject returns a *Rejection with a formatted reason. Returned as a verdict
// hook's error it becomes a REJECT verdict; from any other hook it is an
// error carrying the reason.
func Reject(format string, args ...any) error {
	return &Rejection{Reason: fmt.Sprintf(format, args...)}
}

// Allow is the verdict that lets the action proceed unchanged (a nil verdict
// with a nil error means the same).
func Allow() *MessageVerdict { return &MessageVerdict{Action: Action_ACTION_ALLOW} }

// Modify is the verdict that replaces the message's text.
func Modify(text string) *MessageVerdict {
	return &MessageVerdict{Action: Action_ACTION_MODIFY, Text: text}
}

func decodeRequest(hook string, in []byte, req any) error {
	if len(in) == 0 {
		return nil
	}
	if err := json.Unmarshal(in, req); err != nil {
		return fmt.Errorf("decode %s input: %w", hook, err)
	}
	return nil
}

// Enum helpers for the generated enum types: protojson writes names and
// reads names or numbers.

func enumString(names map[int32]string, v int32) string {
	if n, ok := names[v]; ok {
		return n
	}
	return strconv.Itoa(int(v))
}

func enumMarshal(names map[int32]string, v int32) ([]byte, error) {
	if n, ok := names[v]; ok {
		return appendString(nil, n), nil
	}
	return strconv.AppendInt(nil, int64(v), 10), nil
}

func enumUnmarshal(names map[int32]string, enum string, b []byte, v *int32) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		for n, name := range names {
			if name == s {
				*v = n
				return nil
			}
		}
		return fmt.Errorf("%s: unknown value %q", enum, s)
	}
	if string(b) == "null" {
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 32)
	if err != nil {
		return fmt.Errorf("%s: %s is neither a name nor a number", enum, b)
	}
	*v = int32(n)
	return nil
}
