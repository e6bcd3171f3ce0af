package hub

import "encoding/binary"

// Frame wraps a JSON payload in a WebSocket text-frame header (RFC 6455 §5.2;
// server frames are never masked). Hub payloads are complete frames so that
// one encoding serves every recipient and session writers copy bytes
// straight to the socket.
func Frame(payload []byte) []byte {
	// One allocation of the exact size: header (≤ 10 bytes) + payload.
	return AppendFrame(make([]byte, 0, len(payload)+10), 0x1, payload)
}

// AppendFrame appends a final frame with the given opcode to dst.
func AppendFrame(dst []byte, opcode byte, payload []byte) []byte {
	n := len(payload)
	dst = append(dst, 0x80|opcode)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, 0, 0)
		binary.BigEndian.PutUint16(dst[len(dst)-2:], uint16(n))
	default:
		dst = append(dst, 127, 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint64(dst[len(dst)-8:], uint64(n))
	}
	return append(dst, payload...)
}
