package unhidra

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// A hand-written codec for the hottest payloads: MessageWillBePostedRequest
// and MessageWillBeUpdatedRequest in, MessageVerdict in its CallResult
// envelope out, in the same protojson shape the generated types have.
// encoding/json relies on reflection, which costs tens of microseconds per
// call inside a Go WASM guest; a message filter runs on every message, so
// its path avoids it. Everything else uses encoding/json.

var errSyntax = errors.New("malformed JSON")

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) expect(c byte) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != c {
		return errSyntax
	}
	s.i++
	return nil
}

// str reads a JSON string (with escapes).
func (s *scanner) str() (string, error) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", errSyntax
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			v := string(s.b[start:s.i])
			s.i++
			return v, nil
		}
		if c == '\\' {
			// Slow path: let encoding/json unescape this one string.
			end := s.i
			for end < len(s.b) {
				if s.b[end] == '\\' {
					end += 2
					continue
				}
				if s.b[end] == '"' {
					break
				}
				end++
			}
			if end >= len(s.b) {
				return "", errSyntax
			}
			var v string
			if err := json.Unmarshal(s.b[start-1:end+1], &v); err != nil {
				return "", err
			}
			s.i = end + 1
			return v, nil
		}
		s.i++
	}
	return "", errSyntax
}

// skip passes over any JSON value and returns its raw bytes.
func (s *scanner) skip() ([]byte, error) {
	s.ws()
	start := s.i
	depth := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			if _, err := s.str(); err != nil {
				return nil, err
			}
			if depth == 0 {
				return s.b[start:s.i], nil
			}
			continue
		case c == '{' || c == '[':
			depth++
		case (c == '}' || c == ']') && depth == 0: // end of the enclosing object
			if s.i == start {
				return nil, errSyntax
			}
			return s.b[start:s.i], nil
		case c == '}' || c == ']':
			depth--
			if depth < 0 {
				return nil, errSyntax
			}
			if depth == 0 {
				s.i++
				return s.b[start:s.i], nil
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r'):
			return s.b[start:s.i], nil
		}
		s.i++
	}
	if depth == 0 && s.i > start {
		return s.b[start:s.i], nil
	}
	return nil, errSyntax
}

// null consumes a JSON null.
func (s *scanner) null() bool {
	s.ws()
	if s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// nextKey advances to the next key of an object whose '{' was read (first
// tells whether a key was read before). done is true at the closing '}'.
// Loops over it stay free of closures: every call and allocation counts in
// a Go guest.
func (s *scanner) nextKey(first bool) (key string, done bool, err error) {
	s.ws()
	if s.i >= len(s.b) {
		return "", false, errSyntax
	}
	if s.b[s.i] == '}' {
		s.i++
		return "", true, nil
	}
	if !first {
		if s.b[s.i] != ',' {
			return "", false, errSyntax
		}
		s.i++
	}
	if key, err = s.str(); err != nil {
		return "", false, err
	}
	return key, false, s.expect(':')
}

// end checks that nothing but white space follows.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

// int64 reads a 64-bit integer as protojson writes it (a string) or as a
// number.
func (s *scanner) int64() (int64, error) {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, err := s.str()
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(v, 10, 64)
	}
	raw, err := s.skip()
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(raw), 10, 64)
}

var encodings = []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}

// bytes reads base64 (standard or URL alphabet, padded or not, as protojson
// accepts).
func (s *scanner) bytes() ([]byte, error) {
	v, err := s.str()
	if err != nil {
		return nil, err
	}
	for _, enc := range encodings {
		if b, err := enc.DecodeString(v); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("malformed base64")
}

// message parses a Message object.
func (s *scanner) message(m *Message) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, done, err := s.nextKey(first)
		if err != nil || done {
			return err
		}
		if s.null() {
			continue
		}
		switch key {
		case "id":
			m.Id, err = s.str()
		case "room":
			m.Room, err = s.str()
		case "sender":
			m.Sender, err = s.str()
		case "text":
			m.Text, err = s.str()
		case "thread":
			m.Thread, err = s.str()
		case "meta_json", "metaJson":
			m.MetaJson, err = s.bytes()
		case "seq":
			m.Seq, err = s.int64()
		case "ts":
			m.Ts, err = s.int64()
		default:
			_, err = s.skip()
		}
		if err != nil {
			return err
		}
	}
}

// decodePostedRequest parses a MessageWillBePostedRequest; its message, if
// any, is decoded into m (so that a caller can allocate both at once).
func decodePostedRequest(b []byte, r *MessageWillBePostedRequest, m *Message) error {
	s := scanner{b: b}
	if err := s.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, done, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if done {
			return s.end()
		}
		switch {
		case s.null():
		case key == "message":
			r.Message = m
			err = s.message(m)
		default:
			_, err = s.skip()
		}
		if err != nil {
			return err
		}
	}
}

// decodeUpdatedRequest parses a MessageWillBeUpdatedRequest.
func decodeUpdatedRequest(b []byte, r *MessageWillBeUpdatedRequest) error {
	s := scanner{b: b}
	if err := s.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, done, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if done {
			return s.end()
		}
		if s.null() {
			continue
		}
		switch key {
		case "room":
			r.Room, err = s.str()
		case "id":
			r.Id, err = s.str()
		case "editor":
			r.Editor, err = s.str()
		case "new_text", "newText":
			r.NewText, err = s.str()
		default:
			_, err = s.skip()
		}
		if err != nil {
			return err
		}
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// appendVerdictResult appends a CallResult envelope holding v as protojson
// (zero fields left out; nil is an empty verdict, which allows).
func appendVerdictResult(dst []byte, v *MessageVerdict) []byte {
	dst = append(dst, `{"result":{`...)
	if v != nil {
		sep := ""
		if v.Action != 0 {
			dst = append(dst, `"action":`...)
			if name, ok := actionNames[int32(v.Action)]; ok {
				dst = appendString(dst, name)
			} else {
				dst = strconv.AppendInt(dst, int64(v.Action), 10)
			}
			sep = ","
		}
		if v.Text != "" {
			dst = append(append(dst, sep...), `"text":`...)
			dst = appendString(dst, v.Text)
			sep = ","
		}
		if len(v.MetaJson) > 0 {
			dst = append(append(dst, sep...), `"meta_json":"`...)
			dst = append(base64.StdEncoding.AppendEncode(dst, v.MetaJson), '"')
			sep = ","
		}
		if v.Reason != "" {
			dst = append(append(dst, sep...), `"reason":`...)
			dst = appendString(dst, v.Reason)
		}
	}
	return append(dst, `}}`...)
}
