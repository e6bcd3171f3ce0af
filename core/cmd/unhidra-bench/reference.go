package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// The reference server is the floor Unhidra is measured against: fasthttp +
// fasthttp/websocket, every text frame a client sends is framed once and
// queued to every connection in the same room (?room=…), and one writer
// goroutine per connection writes whatever is queued in one syscall — the
// same delivery technique Unhidra uses, minus auth, storage, validation,
// routing and metrics.
type refServer struct {
	mu    sync.RWMutex
	rooms map[string]map[*refConn]struct{}
}

type refConn struct {
	nc     net.Conn
	mu     sync.Mutex
	queue  [][]byte
	spare  [][]byte
	notify chan struct{}
}

func (c *refConn) enqueue(f []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *refConn) writeLoop(done <-chan struct{}) {
	var buf []byte
	for {
		select {
		case <-c.notify:
		case <-done:
			return
		}
		c.mu.Lock()
		batch := c.queue
		c.queue, c.spare = c.spare[:0], batch
		c.mu.Unlock()
		buf = buf[:0]
		for i, f := range batch {
			buf = append(buf, f...)
			batch[i] = nil
		}
		if len(buf) > 0 {
			if _, err := c.nc.Write(buf); err != nil {
				return
			}
		}
		if cap(buf) > 64<<10 {
			buf = nil
		}
	}
}

func refFrame(payload []byte) []byte {
	n := len(payload)
	b := make([]byte, 0, n+10)
	b = append(b, 0x81)
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func (s *refServer) serve(conn *websocket.Conn, room string) {
	c := &refConn{nc: conn.NetConn(), notify: make(chan struct{}, 1)}
	s.mu.Lock()
	m := s.rooms[room]
	if m == nil {
		m = map[*refConn]struct{}{}
		s.rooms[room] = m
	}
	m[c] = struct{}{}
	s.mu.Unlock()
	done := make(chan struct{})
	go c.writeLoop(done)
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			break
		}
		if mt != websocket.TextMessage {
			continue
		}
		f := refFrame(data) // encode once for the whole room
		s.mu.RLock()
		for rc := range s.rooms[room] {
			rc.enqueue(f)
		}
		s.mu.RUnlock()
	}
	close(done)
	s.mu.Lock()
	delete(s.rooms[room], c)
	s.mu.Unlock()
}

// runReference serves the reference server on addr and prints the bound
// address on stdout (the coordinator reads it).
func runReference(addr string) error {
	freeOSMemoryOnSignal()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &refServer{rooms: map[string]map[*refConn]struct{}{}}
	up := websocket.FastHTTPUpgrader{
		ReadBufferSize:   1024,
		WriteBufferSize:  256,
		Subprotocols:     []string{"unhidra.v1"},
		CheckOrigin:      func(*fasthttp.RequestCtx) bool { return true },
		HandshakeTimeout: 10 * time.Second,
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) != "/ws" {
				ctx.Error("not found", fasthttp.StatusNotFound)
				return
			}
			room := string(ctx.QueryArgs().Peek("room"))
			if err := up.Upgrade(ctx, func(conn *websocket.Conn) { s.serve(conn, room) }); err != nil {
				return
			}
		},
		Concurrency: 1 << 20,
	}
	fmt.Fprintf(os.Stdout, "listening %s\n", ln.Addr())
	return srv.Serve(ln)
}
