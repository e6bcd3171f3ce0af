package gateway

import (
	"testing"

	"github.com/unhidra/unhidra/sdk/protocol"
)

var benchSendFrame = []byte(`{"type":"send","room":"0193b0a4-7c1e-7a7b-9c55-3f0f2f6b7d10","ref":"c-1842","text":"hello, this is a message of ordinary length for a chat room"}`)

// BenchmarkDecodeFrame is the per-frame decode cost on the read path.
func BenchmarkDecodeFrame(b *testing.B) {
	if f, err := decodeFrame(benchSendFrame); err != nil || f.Type != protocol.TypeSend {
		b.Fatalf("decodeFrame = %+v, %v", f, err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchSendFrame)))
	for b.Loop() {
		_, _ = decodeFrame(benchSendFrame)
	}
}
