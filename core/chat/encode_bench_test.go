package chat

import (
	"encoding/json"
	"testing"

	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

var benchEvent = store.Event{RoomID: "0193b0a4-7c1e-7a7b-9c55-3f0f2f6b7d10", Seq: 1842, Kind: store.EventMessage,
	MessageID: "0193b0a4-8000-7a7b-9c55-3f0f2f6b7d11", ActorID: "0193b0a4-9000-7a7b-9c55-3f0f2f6b7d12",
	Text: "hello, this is a message of ordinary length for a chat room", At: 1764230400000}

// TestEventRoundTrip: a committed message becomes an event whose fields and
// JSON payload say the same thing (no transport framing in it).
func TestEventRoundTrip(t *testing.T) {
	ev := NewEvent(&benchEvent)
	if ev.Kind != protocol.TypeMessage || ev.Room != benchEvent.RoomID || ev.User != benchEvent.ActorID || ev.Seq != 1842 {
		t.Fatalf("event fields: %+v", ev)
	}
	var got protocol.Frame
	if err := json.Unmarshal(ev.Payload, &got); err != nil {
		t.Fatalf("payload is not a JSON object: %v (%q)", err, ev.Payload)
	}
	if got.Type != protocol.TypeMessage || got.Seq != 1842 || got.Text == nil || *got.Text != benchEvent.Text || got.From != benchEvent.ActorID {
		t.Fatalf("round trip: %+v", got)
	}
}

// BenchmarkEncodeMessage is the once-per-fan-out cost of turning a committed
// event into the event every subscriber receives.
func BenchmarkEncodeMessage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewEvent(&benchEvent)
	}
}
