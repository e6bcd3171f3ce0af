package unhidra

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
)

var hostJSON = protojson.MarshalOptions{UseProtoNames: true}

// The fast decoder reads what the host writes (protojson) exactly as
// encoding/json reads it into the generated types.
func TestFastDecodeMatchesGeneratedTypes(t *testing.T) {
	msgs := []*pb.Message{
		{Room: "r", Sender: "u", Text: "hello"},
		{Id: "m1", Room: "r", Sender: "u", Text: "quote \" backslash \\ newline \n tab \t unicode é ☃ 😀", Thread: "t",
			MetaJson: []byte(`{"a":[1,{"b":"}"}]}`), Seq: 42, Ts: 1700000000000},
		{Text: ""},
		{Seq: -1, Ts: 9007199254740993},
	}
	var inputs []string
	for _, m := range msgs {
		b, err := hostJSON.Marshal(&pb.MessageWillBePostedRequest{Message: m})
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(b))
	}
	inputs = append(inputs,
		`{}`,
		` { "message" : { "text" : "spaced" , "unknown" : [1, 2, {"x": "y"}], "room": "r", "seq": 7 } , "later": null } `,
		`{"message":null}`,
		`{"message":{"text":"x","meta_json":null,"thread":null}}`,
		`{"message":{"metaJson":"e30","ts":"12"}}`,
	)
	for _, in := range inputs {
		var want, got MessageWillBePostedRequest
		if err := json.Unmarshal([]byte(strings.ReplaceAll(strings.ReplaceAll(in, `"metaJson":"e30"`, `"meta_json":"e30="`), `"seq": 7`, `"seq": "7"`)), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := decodePostedRequest([]byte(in), &got, new(Message)); err != nil {
			t.Fatalf("decodePostedRequest(%s): %v", in, err)
		}
		if !reflect.DeepEqual(want, got) && !(want.Message == nil && got.Message == nil) {
			t.Errorf("%s:\n got %+v\nwant %+v", in, got.Message, want.Message)
		}
	}
	for _, bad := range []string{``, `{`, `{"message":}`, `{"message":{"text":"x"}`, `[1]`,
		`{"message":{"seq":"x"}}`, `{"message":{"text" "x"}}`, `{"message":{"meta_json":"!!"}}`, `{} trailing`} {
		var r MessageWillBePostedRequest
		if err := decodePostedRequest([]byte(bad), &r, new(Message)); err == nil {
			t.Errorf("decodePostedRequest(%q) accepted malformed input", bad)
		}
	}

	upd, _ := hostJSON.Marshal(&pb.MessageWillBeUpdatedRequest{Room: "r", Id: "m", Editor: "u", NewText: "new \"text\""})
	var want, got MessageWillBeUpdatedRequest
	if err := json.Unmarshal(upd, &want); err != nil {
		t.Fatal(err)
	}
	if err := decodeUpdatedRequest(upd, &got); err != nil || want != got {
		t.Fatalf("update: got %+v (%v), want %+v", got, err, want)
	}
}

// The fast encoder writes what the host reads (protojson), the same as the
// generic encoding of the generated type.
func TestFastVerdictIsProtojson(t *testing.T) {
	cases := []*MessageVerdict{
		nil,
		Allow(),
		{Action: Action_ACTION_REJECT, Reason: "no \"quotes\" \n or \\ here ☃ \x01"},
		{Action: Action_ACTION_MODIFY, Text: "masked ****\t\"x\"", MetaJson: []byte(`{"k":1}`)},
		{Action: Action(42)},
	}
	for _, v := range cases {
		b := appendVerdictResult(nil, v)
		var env CallResult
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		var got pb.MessageVerdict
		if err := protojson.Unmarshal(env.Result, &got); err != nil {
			t.Fatalf("protojson rejects %s: %v", env.Result, err)
		}
		var generic pb.MessageVerdict
		if v != nil {
			gb, _ := json.Marshal(v)
			if err := protojson.Unmarshal(gb, &generic); err != nil {
				t.Fatalf("protojson rejects the generic %s: %v", gb, err)
			}
		}
		if got.Action != generic.Action || got.Text != generic.Text || got.Reason != generic.Reason || string(got.MetaJson) != string(generic.MetaJson) {
			t.Errorf("fast %s, generic %v", env.Result, &generic)
		}
	}
}

// Every generated type round-trips through protojson: what the host writes
// the SDK reads, and what the SDK writes the host reads, field for field.
func TestGeneratedTypesAreProtojsonCompatible(t *testing.T) {
	in := &pb.SecurityEventBatch{Gap: true, Events: []*pb.SecurityEvent{{Id: 18446744073709551615, At: -5, Type: "login.failed",
		Details: map[string]string{"username": "alice"}}}}
	b, _ := hostJSON.Marshal(in)
	var mirror SecurityEventBatch
	if err := json.Unmarshal(b, &mirror); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if mirror.Events[0].Id != 18446744073709551615 || mirror.Events[0].At != -5 || mirror.Events[0].Details["username"] != "alice" || !mirror.Gap {
		t.Fatalf("mirror %+v", mirror.Events[0])
	}
	back, _ := json.Marshal(&mirror)
	var out pb.SecurityEventBatch
	if err := protojson.Unmarshal(back, &out); err != nil {
		t.Fatalf("protojson rejects %s: %v", back, err)
	}
	if !strings.Contains(string(back), `"id":"18446744073709551615"`) || out.Events[0].Id != in.Events[0].Id {
		t.Fatalf("round trip %s", back)
	}

	ev := &pb.RoomEvent{UserId: "u", Room: "r", Actor: "a", Reason: pb.MembershipReason_MEMBERSHIP_REASON_ORG_REMOVAL, Role: "member"}
	b, _ = hostJSON.Marshal(ev)
	var re RoomEvent
	if err := json.Unmarshal(b, &re); err != nil || re.Reason != MembershipReason_MEMBERSHIP_REASON_ORG_REMOVAL || re.UserId != "u" {
		t.Fatalf("%s → %+v (%v)", b, re, err)
	}
	if err := json.Unmarshal([]byte(`{"reason":6}`), &re); err != nil || re.Reason != MembershipReason_MEMBERSHIP_REASON_ORG_REMOVAL {
		t.Fatalf("enum by number: %+v %v", re, err)
	}
	if err := json.Unmarshal([]byte(`{"reason":"NO_SUCH"}`), &re); err == nil {
		t.Fatal("unknown enum name accepted")
	}
}

func FuzzDecodePostedRequest(f *testing.F) {
	f.Add([]byte(`{"message":{"room":"r","text":"a\"b","meta_json":"e30=","seq":"1"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r MessageWillBePostedRequest
		_ = decodePostedRequest(b, &r, new(Message)) // must not panic or hang
	})
}

func hostUnmarshal(b []byte, m proto.Message) error {
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m)
}
