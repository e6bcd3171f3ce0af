package gateway

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/unhidra/unhidra/sdk/protocol"
)

func TestDecodeFrame(t *testing.T) {
	long := strings.Repeat("r", MaxRef+1)
	cases := []struct {
		name, in string
		typ      string // want this type when ok
		err      string // want an error containing this
		ref      string // ref to echo
	}{
		{"send", `{"type":"send","room":"r","text":"hi","ref":"1"}`, "send", "", "1"},
		{"send empty text is decoded (the chat layer rejects it)", `{"type":"send","room":"r","text":""}`, "send", "", ""},
		{"send no text", `{"type":"send","room":"r","ref":"x"}`, "", "send needs text", "x"},
		{"send null text", `{"type":"send","room":"r","text":null,"ref":"x"}`, "", "send needs text", "x"},
		{"send no room", `{"type":"send","text":"hi"}`, "", "send needs room", ""},
		{"edit no id", `{"type":"edit","room":"r","text":"t"}`, "", "edit needs id", ""},
		{"edit", `{"type":"edit","room":"r","id":"i","text":"t"}`, "edit", "", ""},
		{"delete", `{"type":"delete","room":"r","id":"i"}`, "delete", "", ""},
		{"react no id", `{"type":"react","room":"r","emoji":"x"}`, "", "react needs id", ""},
		{"join", `{"type":"join","room":"r"}`, "join", "", ""},
		{"leave no room", `{"type":"leave"}`, "", "leave needs room", ""},
		{"sync", `{"type":"sync","room":"r","after":3}`, "sync", "", ""},
		{"typing", `{"type":"typing","room":"r"}`, "typing", "", ""},
		{"read no seq", `{"type":"read","room":"r"}`, "", "read needs seq", ""},
		{"read", `{"type":"read","room":"r","seq":0}`, "read", "", ""},
		{"ping", `{"type":"ping","ref":"p"}`, "ping", "", "p"},
		{"meta null is absent", `{"type":"send","room":"r","text":"t","meta":null}`, "send", "", ""},
		{"unknown type echoes ref", `{"type":"teleport","ref":"z"}`, "", "unknown frame type", "z"},
		{"no type", `{"ref":"z"}`, "", "no type", "z"},
		{"null", `null`, "", "no type", ""},
		{"array", `[1]`, "", "not a JSON object", ""},
		{"string", `"send"`, "", "not a JSON object", ""},
		{"truncated", `{"type":"send",`, "", "not a JSON object", ""},
		{"wrong field type", `{"type":"sync","room":"r","after":"3"}`, "", "not a JSON object", ""},
		{"seq overflow", `{"type":"read","room":"r","seq":99999999999999999999}`, "", "not a JSON object", ""},
		{"invalid utf-8", "{\"type\":\"send\",\"text\":\"\xff\"}", "", "UTF-8", ""},
		{"long ref is not echoed", `{"type":"ping","ref":"` + long + `"}`, "", "ref is longer", ""},
		{"empty", ``, "", "not a JSON object", ""},
		{"plugin", `{"type":"plugin","ref":"q","plugin":"poll","op":"vote.cast","room":"r","data":{"choice":2}}`, "plugin", "", "q"},
		{"plugin without room or data", `{"type":"plugin","plugin":"poll","op":"list"}`, "plugin", "", ""},
		{"plugin data null is absent", `{"type":"plugin","plugin":"poll","op":"list","data":null}`, "plugin", "", ""},
		{"plugin no plugin", `{"type":"plugin","op":"list","ref":"q"}`, "", "plugin needs plugin", "q"},
		{"plugin bad id", `{"type":"plugin","plugin":"Poll","op":"list"}`, "", "plugin needs plugin", ""},
		{"plugin id too long", `{"type":"plugin","plugin":"` + strings.Repeat("p", 33) + `","op":"list"}`, "", "plugin needs plugin", ""},
		{"plugin no op", `{"type":"plugin","plugin":"poll"}`, "", "plugin needs op", ""},
		{"plugin bad op", `{"type":"plugin","plugin":"poll","op":"Vote!"}`, "", "plugin needs op", ""},
		{"plugin op too long", `{"type":"plugin","plugin":"poll","op":"` + strings.Repeat("o", 65) + `"}`, "", "plugin needs op", ""},
		{"plugin data not JSON", `{"type":"plugin","plugin":"poll","op":"x","data":{]}`, "", "not a JSON object", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := decodeFrame([]byte(tc.in))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("decodeFrame(%s) = %v", tc.in, err)
				}
				if f.Type != tc.typ {
					t.Fatalf("type %q, want %q", f.Type, tc.typ)
				}
			} else {
				if err == nil || !strings.Contains(err.Message, tc.err) {
					t.Fatalf("decodeFrame(%s) error %v, want %q", tc.in, err, tc.err)
				}
				if err.Code != protocol.CodeBadRequest {
					t.Fatalf("code %q, want bad_request", err.Code)
				}
			}
			if f.Ref != tc.ref {
				t.Fatalf("ref %q, want %q", f.Ref, tc.ref)
			}
			if tc.name == "meta null is absent" && f.Meta != nil {
				t.Fatalf("meta = %s", f.Meta)
			}
			if tc.name == "plugin data null is absent" && f.Data != nil {
				t.Fatalf("data = %s", f.Data)
			}
			if tc.name == "plugin" && (f.Plugin != "poll" || f.Op != "vote.cast" || string(f.Data) != `{"choice":2}`) {
				t.Fatalf("plugin frame decoded as %+v", f)
			}
		})
	}
}

// FuzzClientFrame checks the decoder never panics and keeps its contract: an
// error is a bad_request with a valid UTF-8 message and an acceptable ref;
// a decoded frame has a known type, every field that type needs, and
// survives a re-encode unchanged.
func FuzzClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"send","room":"r","text":"hi","ref":"1","meta":{"k":[1,2]}}`,
		`{"type":"sync","room":"r","after":-1,"limit":100000}`,
		`{"type":"read","room":"r","seq":9223372036854775807}`,
		`{"type":"react","room":"r","id":"i","emoji":"👍","on":false}`,
		`{"type":"send","text":"\ud800","room":"\u0000"}`,
		`{"TYPE":"PING","Ref":"x"}`,
		`{"type":"send","type":"ping"}`,
		`null`, `[]`, `{}`, `{"type":1}`,
		`{"type":"plugin","plugin":"poll","op":"vote","room":"r","data":[1,{"a":null}],"ref":"p"}`,
		`{"type":"plugin","plugin":"p-1","op":"a.b_c-d","data":null}`,
		`{"type":"plugin","plugin":"-p","op":""}`,
	} {
		f.Add([]byte(s))
	}
	known := protocol.ClientTypes
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if len(fr.Ref) > MaxRef {
			t.Fatalf("ref of %d bytes accepted", len(fr.Ref))
		}
		if err != nil {
			if err.Code != protocol.CodeBadRequest || err.Message == "" || !utf8.ValidString(err.Message) {
				t.Fatalf("bad error %+v", err)
			}
			return
		}
		if !slices.Contains(known, fr.Type) {
			t.Fatalf("accepted unknown type %q", fr.Type)
		}
		if fr.Type != protocol.TypePing && fr.Type != protocol.TypePlugin && fr.Room == "" {
			t.Fatalf("accepted %s without room", fr.Type)
		}
		if fr.Type == protocol.TypePlugin && (!protocol.ValidPluginID(fr.Plugin) || !protocol.ValidPluginName(fr.Op)) {
			t.Fatalf("accepted plugin frame for %q op %q", fr.Plugin, fr.Op)
		}
		if string(fr.Data) == "null" {
			t.Fatal("data null kept")
		}
		if (fr.Type == protocol.TypeSend || fr.Type == protocol.TypeEdit) && fr.Text == nil {
			t.Fatalf("accepted %s without text", fr.Type)
		}
		if fr.Type == protocol.TypeRead && fr.Seq == nil {
			t.Fatal("accepted read without seq")
		}
		if string(fr.Meta) == "null" {
			t.Fatal("meta null kept")
		}
		// Re-encoding what was decoded must decode to the same frame.
		b, merr := json.Marshal(fr)
		if merr != nil {
			t.Fatalf("re-encode %+v: %v", fr, merr)
		}
		again, err2 := decodeFrame(b)
		if err2 != nil {
			t.Fatalf("re-encoded frame %s rejected: %v", b, err2)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the frame:\n%s\n%s", b, b2)
		}
	})
}
