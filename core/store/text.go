package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// Every string the store keeps must be storable on both backends: valid
// UTF-8 (Postgres refuses anything else) without NUL (Postgres text cannot
// hold U+0000; SQLite could, and refusing it there too keeps both the same).
// CheckText and CheckJSON are that rule for what people choose (refused
// with bad_request at every edge); CleanText makes other input, such as a
// User-Agent, storable instead.

// ErrBadText is matched (errors.Is) by every error of CheckText and CheckJSON.
var ErrBadText = errors.New("not storable text")

// TextError says which input is not storable and why.
type TextError struct {
	Field  string // the input, e.g. "text" or "request body field \"name\""
	Reason string
}

func (e *TextError) Error() string { return e.Field + " " + e.Reason }

// Is makes every TextError an ErrBadText.
func (e *TextError) Is(target error) bool { return target == ErrBadText }

const (
	reasonUTF8 = "is not valid UTF-8"
	reasonNUL  = "contains a NUL character (U+0000)"
)

// CheckText returns a *TextError naming field when s cannot be stored.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return &TextError{field, reasonUTF8}
	}
	if strings.IndexByte(s, 0) >= 0 {
		return &TextError{field, reasonNUL}
	}
	return nil
}

// CheckJSON checks a JSON document (a request body, a message's meta):
// valid UTF-8, and no string in it, key or value, decodes to one holding
// NUL (the escape \u0000). Syntax errors are left to the decoder: a
// document that does not parse is not reported here.
func CheckJSON(field string, raw []byte) error {
	if !utf8.Valid(raw) {
		return &TextError{field, reasonUTF8}
	}
	if !bytes.Contains(raw, []byte(`\u0000`)) {
		return nil // the only way a valid document can hold a NUL
	}
	// Walk the strings; "\\u0000" is a backslash and text, not a NUL.
	type level struct {
		object, wantKey bool
		key             string
	}
	var stack []level
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		top := len(stack) - 1
		isKey := top >= 0 && stack[top].object && stack[top].wantKey
		if top >= 0 && stack[top].object {
			stack[top].wantKey = !stack[top].wantKey
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				stack = append(stack, level{object: v == '{', wantKey: true})
			} else {
				stack = stack[:top]
			}
		case string:
			if isKey {
				stack[top].key = v
			}
			if strings.IndexByte(v, 0) >= 0 {
				var path []string
				for _, l := range stack {
					if l.object {
						path = append(path, CleanText(l.key, 64))
					}
				}
				where := field
				if len(path) > 0 {
					where += " field " + strings.Join(path, ".")
				}
				return &TextError{where, reasonNUL}
			}
		}
	}
}

// CleanText makes s storable, for input nobody chose (a User-Agent, a
// header): invalid bytes and NUL become U+FFFD, and s is cut to at most
// max bytes on a rune boundary.
func CleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
