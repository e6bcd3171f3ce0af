package store

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckText(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: "" ok, else part of the error
	}{
		{"hello 👋", ""},
		{"", ""},
		{"a\x00b", "text contains a NUL"},
		{"\xff", "text is not valid UTF-8"},
		{"é"[:1], "not valid UTF-8"},
		{`\u0000`, ""}, // six characters, not a NUL
	} {
		err := CheckText("text", c.in)
		if c.want == "" {
			if err != nil {
				t.Errorf("CheckText(%q) = %v", c.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrBadText) {
			t.Errorf("CheckText(%q) = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{`{"a":"b","c":[1,"d",{"e":null}]}`, ""},
		{`{"a":"\\u0000"}`, ""}, // an escaped backslash, then text
		{`{"a":"x\u0000"}`, `body field a contains a NUL`},
		{`{"a":{"b":["x","\u0000"]},"c":1}`, `body field a.b contains a NUL`},
		{`{"a":{"b":1},"c":"\u0000"}`, `body field c contains a NUL`},
		{`{"k\u0000":1}`, `body field k` + "\uFFFD" + ` contains a NUL`},
		{`["\u0000"]`, `body contains a NUL`},
		{"{\"a\":\"\xff\"}", `body is not valid UTF-8`},
		{`{"a":"\u0000"`, `body field a contains a NUL`}, // truncated after the string: still found
		{`not json \u0000`, ""},                          // the decoder reports syntax
	} {
		err := CheckJSON("body", []byte(c.in))
		if c.want == "" {
			if err != nil {
				t.Errorf("CheckJSON(%s) = %v", c.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrBadText) {
			t.Errorf("CheckJSON(%s) = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"bad \xff\xfe agent", 64, "bad \uFFFD agent"},
		{"a\x00b", 10, "a\uFFFDb"},
		{"abcé", 4, "abc"}, // é is 2 bytes: cut before it
		{"abcé", 5, "abcé"},
		{"日本語", 7, "日本"},
	} {
		got := CleanText(c.in, c.max)
		if got != c.want || !utf8.ValidString(got) || len(got) > c.max || CheckText("s", got) != nil {
			t.Errorf("CleanText(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
