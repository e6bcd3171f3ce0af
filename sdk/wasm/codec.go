package unhidra

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// A hand-written codec for the hottest payloads (Post in, PostDecision and
// the CallResult envelope out). encoding/json relies on reflection, which
// costs tens of microseconds per call inside a Go WASM guest; a message
// filter runs on every message, so its path avoids it. Everything else uses
// encoding/json.

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

// decodePost parses a Post object.
func decodePost(b []byte, p *Post) error {
	s := scanner{b: b}
	if err := s.expect('{'); err != nil {
		return err
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		switch key {
		case "id", "room", "sender", "text", "thread":
			s.ws()
			if s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "null" {
				s.i += 4
				break
			}
			v, err := s.str()
			if err != nil {
				return err
			}
			switch key {
			case "id":
				p.ID = v
			case "room":
				p.Room = v
			case "sender":
				p.Sender = v
			case "text":
				p.Text = v
			case "thread":
				p.Thread = v
			}
		case "seq", "ts":
			raw, err := s.skip()
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				return err
			}
			if key == "seq" {
				p.Seq = n
			} else {
				p.TS = n
			}
		default: // meta and unknown keys
			raw, err := s.skip()
			if err != nil {
				return err
			}
			if key == "meta" && string(raw) != "null" {
				p.Meta = append(json.RawMessage(nil), raw...)
			}
		}
		s.ws()
		if s.i >= len(s.b) {
			return errSyntax
		}
		if s.b[s.i] == '}' {
			return nil
		}
		if s.b[s.i] != ',' {
			return errSyntax
		}
		s.i++
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

// appendPost appends p as JSON (the fields a decision may change).
func appendPost(dst []byte, p *Post) []byte {
	dst = append(dst, `{"room":`...)
	dst = appendString(dst, p.Room)
	dst = append(dst, `,"sender":`...)
	dst = appendString(dst, p.Sender)
	dst = append(dst, `,"text":`...)
	dst = appendString(dst, p.Text)
	if p.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, p.ID)
	}
	if p.Thread != "" {
		dst = append(dst, `,"thread":`...)
		dst = appendString(dst, p.Thread)
	}
	if len(p.Meta) > 0 && json.Valid(p.Meta) {
		dst = append(dst, `,"meta":`...)
		dst = append(dst, p.Meta...)
	}
	return append(dst, '}')
}

// appendDecision appends a CallResult envelope holding d.
func appendDecision(dst []byte, d PostDecision) []byte {
	switch {
	case d.Reject != "":
		dst = append(dst, `{"result":{"reject":`...)
		dst = appendString(dst, d.Reject)
		return append(dst, `}}`...)
	case d.Post != nil:
		dst = append(dst, `{"result":{"post":`...)
		dst = appendPost(dst, d.Post)
		return append(dst, `}}`...)
	}
	return append(dst, `{"result":{}}`...)
}
