package gateway

import "encoding/binary"

// WebSocket framing lives here and only here: events reach the gateway as
// transport-neutral JSON payloads (core/event) and a session frames each one
// as it writes it into its buffer, so one payload serves every recipient
// without a per-session copy.

// appendFrame appends a final, unmasked (server) frame with the given
// opcode and payload to dst (RFC 6455 §5.2).
func appendFrame(dst []byte, opcode byte, payload []byte) []byte {
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

// frameLen is the size of payload once framed.
func frameLen(payload []byte) int {
	switch n := len(payload); {
	case n < 126:
		return n + 2
	case n <= 0xFFFF:
		return n + 4
	default:
		return n + 10
	}
}
