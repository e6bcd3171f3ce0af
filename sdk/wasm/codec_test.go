package unhidra

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecodePostMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{"room":"r","sender":"u","text":"hello"}`,
		`{"id":"m1","room":"r","sender":"u","text":"quote \" backslash \\ newline \n tab \t unicode é ☃ \u00e9 \ud83d\ude00","thread":"t","meta":{"a":[1,{"b":"}"}]},"seq":42,"ts":1700000000000}`,
		` { "text" : "spaced" , "unknown" : [1, 2, {"x": "y"}], "room": "r" } `,
		`{"text":"","meta":null,"thread":null}`,
		`{}`,
	}
	for _, in := range inputs {
		var want, got Post
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := decodePost([]byte(in), &got); err != nil {
			t.Fatalf("decodePost(%s): %v", in, err)
		}
		if string(want.Meta) == "null" {
			want.Meta = nil
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s:\n got %+v\nwant %+v", in, got, want)
		}
	}
	for _, bad := range []string{``, `{`, `{"text":}`, `{"text":"x"`, `[1]`, `{"seq":"x"}`, `{"text" "x"}`} {
		var p Post
		if err := decodePost([]byte(bad), &p); err == nil {
			t.Errorf("decodePost(%q) accepted malformed input", bad)
		}
	}
}

func TestAppendDecisionIsValidJSON(t *testing.T) {
	cases := []PostDecision{
		{},
		{Reject: "no \"quotes\" \n or \\ here ☃ \x01"},
		{Post: &Post{Room: "r", Sender: "u", Text: "masked ****\t\"x\"", Thread: "t", Meta: json.RawMessage(`{"k":1}`)}},
		{Post: &Post{Text: "bad utf8 \xff"}},
	}
	for _, d := range cases {
		b := appendDecision(nil, d)
		var env struct {
			Result PostDecision `json:"result"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if env.Result.Reject != d.Reject {
			t.Errorf("reject %q, want %q", env.Result.Reject, d.Reject)
		}
		if d.Post != nil && d.Post.Text != "bad utf8 \xff" && env.Result.Post.Text != d.Post.Text {
			t.Errorf("text %q, want %q", env.Result.Post.Text, d.Post.Text)
		}
	}
}

func FuzzDecodePost(f *testing.F) {
	f.Add([]byte(`{"room":"r","text":"a\"b","meta":{"x":[1,2]},"seq":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Post
		_ = decodePost(b, &p) // must not panic or hang
	})
}
