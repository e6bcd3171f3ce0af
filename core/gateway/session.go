package gateway

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/event"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// session is one WebSocket connection. The reader goroutine (serve) decodes
// client frames; the writer owns every write to the socket: it takes
// whatever frames are queued, frames each payload into one buffer and writes
// it with one syscall, so a burst of N deliveries costs one write, not N.
// The writer goroutine runs only while there is something to write — an
// idle session costs one goroutine, not two — and at most one runs at a time
// (writing), so writes stay in order.
type session struct {
	g     *Gateway
	ident auth.Identity
	id    uint64
	// ctx carries the handshake's client address, User-Agent and user for
	// the security events of the session's frames.
	ctx context.Context
	// state moves pending → attached (the hijack handler got the socket) or
	// pending → abandoned (the 101 was never written); whoever moves it owns
	// the cleanup.
	state atomic.Int32

	mu         sync.Mutex
	conn       *websocket.Conn // nil until attached
	nc         net.Conn
	queue      []outFrame
	spare      []outFrame
	bytes      int
	pongAt     int        // index in queue of the pong not yet taken by the writer, or -1
	owed       int        // pongs replaced by a newer one since the writer last took the queue
	closing    bool       // no more frames accepted; final frames queued
	slow       bool       // closed as a slow consumer: the reader stops too
	final      []outFrame // goodbye + close frame, written after the queue
	dead       bool       // writer must stop without writing
	writing    bool       // a writer goroutine is running
	finished   bool       // writerDone is closed: nothing will be written again
	writerDone chan struct{}
	ping       *time.Timer

	lastExtend       time.Time
	writeDeadlineSet time.Time        // only the (single) writer touches it
	frames           ratelimit.Bucket // owned by the reader goroutine
}

// outFrame is one queued WebSocket frame: an opcode and a payload that the
// writer frames as it copies it into its buffer. Event payloads are shared
// with every other recipient and never modified.
type outFrame struct {
	op      byte
	payload []byte
}

const (
	statePending int32 = iota
	stateAttached
	stateAbandoned
)

func newSession(g *Gateway, id auth.Identity, sid uint64) *session {
	return &session{g: g, ident: id, id: sid, pongAt: -1, ctx: context.Background(),
		writerDone: make(chan struct{})}
}

// attach hands the session its socket once the upgrade is done. Frames
// queued before (deliveries since registration, a drain's goodbye) are
// written by the writer it starts; pings start too.
func (s *session) attach(conn *websocket.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn, s.nc = conn, conn.NetConn()
	if len(s.queue) > 0 || s.closing || s.dead {
		s.kickLocked()
	}
	if !s.dead {
		s.ping = time.AfterFunc(s.g.o.PingInterval, s.pingTick)
	}
}

// pingTick pings every PingInterval from a timer rather than a goroutine.
func (s *session) pingTick() {
	s.Enqueue(byte(websocket.PingMessage), nil)
	s.mu.Lock()
	if !s.dead && !s.closing {
		s.ping.Reset(s.g.o.PingInterval)
	}
	s.mu.Unlock()
}

// event.Subscriber.
func (s *session) SessionID() uint64 { return s.id }
func (s *session) UserID() string    { return s.ident.UserID }

// Deliver queues an event as a text frame (event.Subscriber).
func (s *session) Deliver(ev *event.Event) bool {
	return s.Enqueue(byte(websocket.TextMessage), ev.Payload)
}

// Enqueue queues a frame with opcode op and payload p — data or control
// (pings) — and the writer frames it at write time. It never blocks; a
// session whose queue is over its bounds becomes a slow consumer and is
// closed.
func (s *session) Enqueue(op byte, p []byte) bool { return s.enqueue(outFrame{op, p}, false) }

// pong queues the answer to a client's ping. Only the latest ping needs one
// (RFC 6455 §5.5.3), so a newer pong replaces one the writer has not taken
// yet; the replaced one still counts against the frame bound, so a client
// that pings without reading becomes a slow consumer as fast as one that
// is sent more than it reads, while it costs one frame of memory.
func (s *session) pong(payload []byte) bool {
	return s.enqueue(outFrame{byte(websocket.PongMessage), payload}, true)
}

func (s *session) enqueue(f outFrame, pong bool) bool {
	s.mu.Lock()
	if s.closing || s.dead {
		s.mu.Unlock()
		return false
	}
	// frames is what the session owes the client with this frame, added
	// is how many bytes the queue grows by.
	replace := pong && s.pongAt >= 0
	frames, added := len(s.queue)+s.owed+1, frameLen(f.payload)
	if replace {
		s.owed++
		frames, added = len(s.queue)+s.owed, frameLen(f.payload)-frameLen(s.queue[s.pongAt].payload)
	}
	if frames > s.g.o.QueueFrames || s.bytes+added > s.g.o.QueueBytes {
		s.mu.Unlock()
		if m := s.g.o.Metrics; m != nil {
			m.QueueDrops.Inc()
			m.SlowConsumers.Inc()
		}
		s.g.o.Logger.Warn("slow consumer", "user", s.ident.UserID, "session", s.id)
		s.shutdownDropping(protocol.ReasonSlowConsumer, websocket.ClosePolicyViolation)
		return false
	}
	s.bytes += added
	if replace {
		s.queue[s.pongAt] = f
		s.mu.Unlock()
		return true
	}
	if pong {
		s.pongAt = len(s.queue)
	}
	s.queue = append(s.queue, f)
	s.kickLocked()
	s.mu.Unlock()
	return true
}

// kickLocked starts the writer unless one is running or there is no socket
// yet (attach kicks it then). s.mu is held.
func (s *session) kickLocked() {
	if !s.writing && !s.finished && s.nc != nil {
		s.writing = true
		go s.flush()
	}
}

// finishLocked ends the writer for good. s.mu is held.
func (s *session) finishLocked() {
	s.writing = false
	if !s.finished {
		s.finished = true
		close(s.writerDone)
	}
}

func (s *session) send(f *protocol.Frame) { s.Enqueue(byte(websocket.TextMessage), chat.Encode(f)) }

func (s *session) sendError(ref string, err error) {
	e := chat.AsError(err)
	if e.Code == protocol.CodeInternal {
		s.g.o.Logger.Error("frame failed", "user", s.ident.UserID, "err", err)
	}
	if m := s.g.o.Metrics; m != nil {
		m.ErrorsSent.WithLabelValues(e.Code).Inc()
	}
	s.send(&protocol.Frame{Type: protocol.TypeError, Ref: ref, Code: e.Code, Message: e.Message, RetryAfterMs: e.RetryAfterMs})
}

// finalFrames are goodbye{reason} and the close frame that follows it.
func finalFrames(reason string, reconnectMs int64, code int) []outFrame {
	bye := chat.Encode(&protocol.Frame{Type: protocol.TypeGoodbye, Reason: reason, ReconnectMs: reconnectMs})
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	return []outFrame{{byte(websocket.TextMessage), bye}, {byte(websocket.CloseMessage), append(p, reason...)}}
}

// shutdown flushes what is queued, then says goodbye and closes.
func (s *session) shutdown(reason string, code int, reconnectMs int64) {
	s.mu.Lock()
	if s.closing || s.dead {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.final = finalFrames(reason, reconnectMs, code)
	s.kickLocked()
	s.mu.Unlock()
}

// shutdownDropping discards the queue first (a slow consumer will not read
// it anyway) so memory is released at once.
func (s *session) shutdownDropping(reason string, code int) {
	s.mu.Lock()
	if s.closing || s.dead {
		s.mu.Unlock()
		return
	}
	s.closing, s.slow = true, true
	clear(s.queue) // the backing array outlives this; the payloads need not
	s.queue, s.bytes, s.pongAt, s.owed = s.queue[:0], 0, -1, 0
	s.final = finalFrames(reason, 0, code)
	s.kickLocked()
	s.mu.Unlock()
}

// stop tells the writer the reader is gone; nothing more is written.
func (s *session) stop() {
	s.mu.Lock()
	s.dead = true
	if s.ping != nil {
		s.ping.Stop()
	}
	if !s.writing { // else the running writer sees dead and finishes
		s.finishLocked()
	}
	s.mu.Unlock()
}

// kill closes the socket at once. fasthttp ignores Close on a hijacked
// connection until the handler returns, so expired deadlines are what
// actually unblock the reader (which ends the handler) and a stuck write.
func (s *session) kill() {
	s.stop()
	s.mu.Lock()
	nc := s.nc
	s.mu.Unlock()
	if nc != nil {
		now := time.Now()
		_ = nc.SetReadDeadline(now)
		_ = nc.SetWriteDeadline(now)
		_ = nc.Close()
	}
}

// isClosing reports whether the session has said goodbye.
func (s *session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing || s.dead
}

// slowConsumer reports whether the session was closed as a slow consumer.
func (s *session) slowConsumer() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slow
}

// errSlowConsumer ends the reader of a session closed as a slow consumer.
var errSlowConsumer = errors.New("session closed as a slow consumer")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// flush is the writer: it writes until the queue is empty, then exits; the
// next Enqueue starts it again.
func (s *session) flush() {
	for {
		s.mu.Lock()
		if s.dead {
			s.finishLocked()
			s.mu.Unlock()
			return
		}
		batch := s.queue
		var final []outFrame
		if s.closing {
			final, s.final = s.final, nil
		}
		if len(batch) == 0 && len(final) == 0 {
			s.writing = false
			s.mu.Unlock()
			return
		}
		s.queue, s.spare = s.spare[:0], batch
		s.bytes, s.pongAt, s.owed = 0, -1, 0
		s.mu.Unlock()

		bp := bufPool.Get().(*[]byte)
		buf := (*bp)[:0]
		for _, f := range batch {
			buf = appendFrame(buf, f.op, f.payload)
		}
		for _, f := range final {
			buf = appendFrame(buf, f.op, f.payload)
		}
		// Refreshing the deadline at most once a second (as reads do)
		// saves a call per write; a write still gets at least
		// WriteTimeout minus a second.
		if now := time.Now(); now.Sub(s.writeDeadlineSet) > time.Second {
			s.writeDeadlineSet = now
			_ = s.nc.SetWriteDeadline(now.Add(s.g.o.WriteTimeout))
		}
		_, err := s.nc.Write(buf)
		if cap(buf) <= 256<<10 { // don't keep huge buffers around
			*bp = buf[:0]
			bufPool.Put(bp)
		}
		clear(batch) // let payloads be collected
		if m := s.g.o.Metrics; m != nil {
			m.FramesOut.Add(float64(len(batch)))
			m.WriteBatches.Inc()
		}
		if err != nil {
			s.kill() // sets dead; the next iteration finishes
			continue
		}
		if final != nil {
			// Give the client a moment to answer the close, then hang up.
			_ = s.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
			s.mu.Lock()
			s.finishLocked()
			s.mu.Unlock()
			return
		}
	}
}

// extendDeadline pushes the idle deadline forward. It is throttled (a
// syscall per frame would be wasted) by a fraction of the idle timeout, so
// that a client that answers every ping is never closed as idle. After
// goodbye the closing deadline stands: pings cannot hold a drain open.
func (s *session) extendDeadline() {
	now := time.Now()
	if now.Sub(s.lastExtend) > min(time.Second, s.g.o.IdleTimeout/8) && !s.isClosing() {
		s.lastExtend = now
		_ = s.nc.SetReadDeadline(now.Add(s.g.o.IdleTimeout))
	}
}

func (s *session) readLoop(ctx context.Context) {
	c := s.conn
	c.SetReadLimit(s.g.o.MaxFrame)
	s.lastExtend = time.Time{}
	s.extendDeadline()
	c.SetPongHandler(func(string) error { s.extendDeadline(); return nil })
	// Pongs go through the same bounded queue as everything else (see
	// pong), so a client that pings without reading becomes a slow
	// consumer. From then on nothing more is read: its pings back up on its
	// side, not here.
	c.SetPingHandler(func(data string) error {
		s.extendDeadline()
		if !s.pong([]byte(data)) && s.slowConsumer() {
			return errSlowConsumer
		}
		return nil
	})
	c.SetCloseHandler(func(code int, text string) error {
		s.shutdown("client_closed", websocket.CloseNormalClosure, 0)
		return nil
	})
	for {
		mt, data, err := c.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.sendErrorFrameAndClose(protocol.CodeTooLarge, "frame exceeds the limit", websocket.CloseMessageTooBig)
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				s.shutdown(protocol.ReasonIdle, websocket.CloseGoingAway, 0)
			}
			return
		}
		if s.isClosing() {
			if s.slowConsumer() {
				return
			}
			// After goodbye only the client's close matters; frames that
			// cross it are dropped, and the closing deadline stays put.
			continue
		}
		s.extendDeadline()
		if mt != websocket.TextMessage {
			s.sendError("", chat.Errorf(protocol.CodeBadRequest, "binary frames are not part of protocol v1; send JSON text frames"))
			continue
		}
		s.handle(ctx, data)
	}
}

// sendErrorFrameAndClose queues an error and a goodbye; serve lets the
// writer flush them before the session ends.
func (s *session) sendErrorFrameAndClose(code, msg string, closeCode int) {
	s.sendError("", chat.Errorf(code, "%s", msg))
	s.shutdown(protocol.ReasonPolicy, closeCode, 0)
}

// Closed reports whether the session has ended (the hub uses it to undo a
// subscribe that raced with the session's close).
func (s *session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dead
}

func (s *session) count(t string) {
	if m := s.g.o.Metrics; m != nil {
		switch t {
		case protocol.TypeSend, protocol.TypeEdit, protocol.TypeDelete, protocol.TypeReact, protocol.TypeJoin,
			protocol.TypeLeave, protocol.TypeSync, protocol.TypeTyping, protocol.TypeRead, protocol.TypePing, protocol.TypePlugin:
		default:
			t = "unknown"
		}
		m.FramesIn.WithLabelValues(t).Inc()
	}
}

// MaxRef is the longest ref a client may choose.
const MaxRef = 128

// decodeFrame turns one text frame into a ClientFrame and checks that it is
// a frame of protocol v1 with the fields its type needs. It is pure (no
// session state) so that it can be fuzzed. On error the returned frame
// still carries the decoded ref (when it is acceptable) so that the error
// reply can echo it.
func decodeFrame(data []byte) (protocol.ClientFrame, *chat.Error) {
	var f protocol.ClientFrame
	if !utf8.Valid(data) {
		return f, chat.Errorf(protocol.CodeBadRequest, "frame is not valid UTF-8")
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return protocol.ClientFrame{}, chat.Errorf(protocol.CodeBadRequest, "frame is not a JSON object of protocol v1: %v", err)
	}
	if string(f.Meta) == "null" {
		f.Meta = nil // "meta": null means no meta
	}
	if string(f.Data) == "null" {
		f.Data = nil // likewise for data
	}
	if len(f.Ref) > MaxRef {
		f.Ref = ""
		return f, chat.Errorf(protocol.CodeBadRequest, "ref is longer than %d bytes", MaxRef)
	}
	need := func(ok bool, what string) *chat.Error {
		if ok {
			return nil
		}
		return chat.Errorf(protocol.CodeBadRequest, "%s needs %s", f.Type, what)
	}
	var err *chat.Error
	switch f.Type {
	case protocol.TypeSend:
		err = firstErr(need(f.Room != "", "room"), need(f.Text != nil, "text"))
	case protocol.TypeEdit:
		err = firstErr(need(f.Room != "", "room"), need(f.ID != "", "id"), need(f.Text != nil, "text"))
	case protocol.TypeDelete, protocol.TypeReact:
		err = firstErr(need(f.Room != "", "room"), need(f.ID != "", "id"))
	case protocol.TypeJoin, protocol.TypeLeave, protocol.TypeSync, protocol.TypeTyping:
		err = need(f.Room != "", "room")
	case protocol.TypeRead:
		err = firstErr(need(f.Room != "", "room"), need(f.Seq != nil, "seq"))
	case protocol.TypePing:
	case protocol.TypePlugin:
		err = firstErr(need(protocol.ValidPluginID(f.Plugin), "plugin (a plugin id: 1–32 of a-z, 0-9, '-', starting with a letter)"),
			need(protocol.ValidPluginName(f.Op), "op (1–64 of a-z, 0-9, '.', '_', '-')"))
	case "":
		err = chat.Errorf(protocol.CodeBadRequest, "frame has no type")
	default:
		err = chat.Errorf(protocol.CodeBadRequest, "unknown frame type %q", f.Type)
	}
	if _, ok := Ops[f.Type]; err == nil && !ok {
		// A frame type with no declared authorization decision is refused.
		err = chat.Errorf(protocol.CodeBadRequest, "unknown frame type %q", f.Type)
	}
	return f, err
}

func firstErr(errs ...*chat.Error) *chat.Error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// handle decodes and runs one client frame. Every failure becomes an error
// frame that echoes ref; the connection stays up.
func (s *session) handle(ctx context.Context, data []byte) {
	f, derr := decodeFrame(data)
	if f.Type == "" && derr != nil {
		s.count("invalid")
	} else {
		s.count(f.Type)
	}
	if r := s.g.o.FrameRate; !r.Unlimited() {
		if ok, wait := s.frames.Take(r, time.Now()); !ok {
			s.g.o.Events.RateLimited(ctx, "ws_frames", "user", s.ident.UserID, r, wait)
			s.sendError(f.Ref, chat.RateLimited(wait, "more than %s frames on this connection", r))
			return
		}
	}
	ref := f.Ref
	if derr != nil {
		s.sendError(ref, derr)
		return
	}
	ackOrError := func(a chat.Ack, err error) {
		if err != nil {
			s.sendError(ref, err)
			return
		}
		af := a.Frame(ref)
		s.send(&af)
	}
	id := s.ident
	switch f.Type {
	case protocol.TypeSend:
		s.g.o.Chat.Send(ctx, id, chat.SendRequest{Room: f.Room, Text: *f.Text, Thread: f.Thread, Ref: ref, Meta: f.Meta}, ackOrError)
	case protocol.TypeEdit:
		s.g.o.Chat.Mutate(ctx, id, chat.MutateRequest{Kind: "edited", Room: f.Room, ID: f.ID, Text: *f.Text}, ackOrError)
	case protocol.TypeDelete:
		s.g.o.Chat.Mutate(ctx, id, chat.MutateRequest{Kind: "deleted", Room: f.Room, ID: f.ID}, ackOrError)
	case protocol.TypeReact:
		on := true
		if f.On != nil {
			on = *f.On
		}
		s.g.o.Chat.Mutate(ctx, id, chat.MutateRequest{Kind: "reaction", Room: f.Room, ID: f.ID, Emoji: f.Emoji, On: on}, ackOrError)
	case protocol.TypeJoin:
		last, err := s.g.o.Chat.Join(ctx, id, f.Room)
		if err != nil {
			s.sendError(ref, err)
			return
		}
		s.send(&protocol.Frame{Type: protocol.TypeAck, Ref: ref, Room: f.Room, Seq: last})
	case protocol.TypeLeave:
		if err := s.g.o.Chat.Leave(ctx, id, f.Room); err != nil {
			s.sendError(ref, err)
			return
		}
		s.send(&protocol.Frame{Type: protocol.TypeAck, Ref: ref, Room: f.Room})
	case protocol.TypeSync:
		var after int64
		if f.After != nil {
			after = *f.After
		}
		evs, upto, more, err := s.g.o.Chat.Sync(ctx, id, f.Room, after, f.Limit)
		if err != nil {
			s.sendError(ref, err)
			return
		}
		// One reply must fit comfortably in the session's own queue, or a
		// client syncing a room of large messages would be closed as a
		// slow consumer: stop at a quarter of the byte bound and half the
		// frame bound and let the client page on with more=true.
		budget, maxFrames := s.g.o.QueueBytes/4, s.g.o.QueueFrames/2
		for i := range evs {
			ef := chat.EventFrame(&evs[i])
			b := chat.Encode(&ef)
			if i > 0 && (len(b) > budget || i >= maxFrames) {
				upto, more = evs[i-1].Seq, true
				break
			}
			budget -= len(b)
			s.Enqueue(byte(websocket.TextMessage), b)
		}
		s.send(&protocol.Frame{Type: protocol.TypeSynced, Ref: ref, Room: f.Room, Upto: upto, More: more})
	case protocol.TypeTyping:
		if err := s.g.o.Chat.Typing(ctx, id, s.id, f.Room); err != nil {
			s.sendError(ref, err)
		}
	case protocol.TypeRead:
		if err := s.g.o.Chat.Read(ctx, id, f.Room, *f.Seq); err != nil {
			s.sendError(ref, err)
			return
		}
		s.send(&protocol.Frame{Type: protocol.TypeAck, Ref: ref, Room: f.Room, Seq: *f.Seq})
	case protocol.TypePing:
		s.send(&protocol.Frame{Type: protocol.TypePong, Ref: ref})
	case protocol.TypePlugin:
		// The plugin answers on this goroutine, as a slash command does: a
		// session's frames run in order, each under the hook's deadline.
		data, err := s.g.o.Chat.PluginFrame(ctx, id, chat.PluginFrame{Plugin: f.Plugin, Op: f.Op, Ref: ref, Room: f.Room,
			Session: s.id, Data: f.Data})
		if err != nil {
			s.sendError(ref, err)
			return
		}
		s.send(&protocol.Frame{Type: protocol.TypePluginReply, Ref: ref, Plugin: f.Plugin, Data: data})
	}
}
