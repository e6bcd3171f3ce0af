package gateway

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/unhidra/unhidra/sdk/protocol"
)

var sendFrame = []byte(`{"type":"send","room":"0193b0a4-7c1e-7a7b-9c55-3f0f2f6b7d10","ref":"c-1842","text":"hello, this is a message of ordinary length for a chat room"}`)

// decodeClientFrame is the decode step of session.handle.
func decodeClientFrame(data []byte, f *protocol.ClientFrame) bool {
	return utf8.Valid(data) && json.Unmarshal(data, f) == nil
}

func TestDecodeClientFrame(t *testing.T) {
	var f protocol.ClientFrame
	if !decodeClientFrame(sendFrame, &f) || f.Type != protocol.TypeSend || f.Text == nil || f.Ref != "c-1842" {
		t.Fatalf("decoded %+v", f)
	}
	if decodeClientFrame([]byte("{\"type\":\"send\",\"text\":\"\xff\"}"), &f) {
		t.Fatal("invalid UTF-8 was accepted")
	}
}

// BenchmarkDecodeClientFrame is the per-frame decode cost on the read path.
func BenchmarkDecodeClientFrame(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(sendFrame)))
	for b.Loop() {
		var f protocol.ClientFrame
		decodeClientFrame(sendFrame, &f)
	}
}
