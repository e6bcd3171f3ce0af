package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// wsConn is a deliberately small WebSocket client (RFC 6455): no extensions,
// no fragmentation support on receive beyond what servers under test send,
// a reused read buffer and a reused write buffer. sdk/client allocates and
// decodes JSON per frame, which would make the load generator the bottleneck
// on a 2-core machine that also runs the server.
type wsConn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte // payload buffer, reused between frames

	wmu  sync.Mutex
	wbuf []byte
}

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// dialTCP opens a TCP connection to addr. src, when set, is the local IP to
// dial from (spreading connections over 127.0.0.x avoids ephemeral-port
// exhaustion).
func dialTCP(ctx context.Context, addr string, src net.IP) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
		// Without IP_BIND_ADDRESS_NO_PORT, binding the source IP picks a
		// port at bind time by a linear search that slows down as sessions
		// accumulate; with it the kernel picks the port at connect time.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return nc, nil
}

// dialWS opens a WebSocket to addr (host:port) at path. token, when set, goes
// in an Authorization header; src is dialTCP's.
func dialWS(ctx context.Context, addr, path, token string, src net.IP) (*wsConn, error) {
	nc, err := dialTCP(ctx, addr, src)
	if err != nil {
		return nil, err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
		base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Protocol: unhidra.v1\r\n")
	if token != "" {
		b.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	b.WriteString("\r\n")
	_ = nc.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(nc, b.String()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("write handshake: %w", err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	status, err := br.ReadString('\n')
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("read handshake: %w", err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("read handshake headers: %w", err)
		}
		if line == "\r\n" {
			break
		}
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		nc.Close()
		return nil, fmt.Errorf("handshake refused: %s", strings.TrimSpace(status))
	}
	_ = nc.SetDeadline(time.Time{})
	return &wsConn{nc: nc, br: br}, nil
}

// readFrame returns the next frame. The payload is valid until the next call.
func (c *wsConn) readFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	op = h[0] & 0x0F
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var e [2]byte
		if _, err = io.ReadFull(c.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err = io.ReadFull(c.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	if n > 16<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes is too large", n)
	}
	if uint64(cap(c.buf)) < n {
		c.buf = make([]byte, n)
	}
	payload = c.buf[:n]
	_, err = io.ReadFull(c.br, payload)
	return op, payload, err
}

// writeFrame sends one masked frame. It is safe for concurrent use.
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], 0x80|op)
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	// A zero masking key is valid on the wire and leaves the payload as is;
	// servers must unmask either way, so the server's cost is unchanged.
	b = append(b, 0, 0, 0, 0)
	b = append(b, payload...)
	c.wbuf = b
	_, err := c.nc.Write(b)
	return err
}

func (c *wsConn) close() {
	_ = c.writeFrame(opClose, []byte{0x03, 0xE8})
	_ = c.nc.Close()
}
