// Package client is a Go client for Unhidra protocol v1: a WebSocket
// connection that sends with acks, receives room events, and syncs what it
// missed after a reconnect; plus a small REST client (rest.go). Tests, bots
// and the load generator use it.
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/unhidra/unhidra/sdk/protocol"
)

// Options configures Dial.
type Options struct {
	// Token is the access token, sent as Authorization: Bearer (or, with
	// BrowserStyle, as the bearer.<token> subprotocol).
	Token        string
	BrowserStyle bool
	// Origin, when set, is sent as the Origin header.
	Origin string
	// Events is the capacity of the Events channel (default 4096). When it is
	// full the reader stops reading, and the server eventually treats the
	// connection as a slow consumer.
	Events    int
	TLSConfig *tls.Config
	// OnPluginEvent, when set, receives every plugin.event frame instead of
	// Events. It runs on the reader goroutine: it must not block.
	OnPluginEvent func(PluginEvent)
}

// Conn is one protocol v1 session.
type Conn struct {
	url  string
	opts Options
	ws   *websocket.Conn

	wmu     sync.Mutex
	nextRef atomic.Uint64
	// refPrefix makes generated refs unique across connections: the server
	// keeps a send's ref as its idempotency key for good (per user and
	// room), so a counter that restarted with every connection would make a
	// reconnected client's sends "duplicates" of its earlier ones.
	refPrefix string

	pmu     sync.Mutex
	pending map[string]chan protocol.Frame
	syncs   map[string]*syncCollector
	last    map[string]int64 // room → highest seq seen

	events chan protocol.Frame
	done   chan struct{}
	err    error
	// Goodbye is set when the server said goodbye before closing.
	goodbye atomic.Pointer[protocol.Frame]
}

type syncCollector struct {
	after  int64
	frames map[int64]protocol.Frame
}

// Error is an error frame from the server.
type Error struct {
	Code         string
	Message      string
	RetryAfterMs int64
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// HandshakeError is a refused WebSocket handshake.
type HandshakeError struct {
	Status int
	Body   protocol.ErrorBody
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("handshake refused: HTTP %d %s: %s", e.Status, e.Body.Code, e.Body.Message)
}

// ErrClosed is returned by calls on a closed connection.
var ErrClosed = errors.New("unhidra client: connection closed")

// Dial opens a session at url (ws:// or wss://…/v1/ws).
func Dial(ctx context.Context, url string, o Options) (*Conn, error) {
	if o.Events <= 0 {
		o.Events = 4096
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: o.TLSConfig,
		ReadBufferSize: 4096, WriteBufferSize: 4096}
	h := http.Header{}
	if o.BrowserStyle {
		d.Subprotocols = []string{protocol.Subprotocol, protocol.BearerPrefix + o.Token}
	} else {
		d.Subprotocols = []string{protocol.Subprotocol}
		if o.Token != "" {
			h.Set("Authorization", "Bearer "+o.Token)
		}
	}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	ws, resp, err := d.DialContext(ctx, url, h)
	if err != nil {
		if resp != nil {
			he := &HandshakeError{Status: resp.StatusCode}
			_ = json.NewDecoder(resp.Body).Decode(&he.Body)
			resp.Body.Close()
			return nil, he
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if ws.Subprotocol() != protocol.Subprotocol {
		ws.Close()
		return nil, fmt.Errorf("dial %s: server did not select subprotocol %s", url, protocol.Subprotocol)
	}
	rb := make([]byte, 8)
	if _, err := rand.Read(rb); err != nil {
		ws.Close()
		return nil, fmt.Errorf("dial %s: ref prefix: %w", url, err)
	}
	c := &Conn{url: url, opts: o, ws: ws, refPrefix: "c" + hex.EncodeToString(rb) + "-",
		pending: map[string]chan protocol.Frame{}, syncs: map[string]*syncCollector{},
		last: map[string]int64{}, events: make(chan protocol.Frame, o.Events), done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Events delivers every frame that is not a reply to a call of this client
// (messages, edits, reactions, typing, presence, receipts, goodbye, errors
// without a ref). It is closed when the connection ends.
func (c *Conn) Events() <-chan protocol.Frame { return c.events }

// Done is closed when the connection has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is the reason the connection ended.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Goodbye returns the server's goodbye frame, if one arrived.
func (c *Conn) Goodbye() *protocol.Frame { return c.goodbye.Load() }

// LastSeq is the highest seq this client has seen in room.
func (c *Conn) LastSeq(room string) int64 {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.last[room]
}

// Rooms returns the rooms this client has seen events from, with last seqs.
func (c *Conn) Rooms() map[string]int64 {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	out := make(map[string]int64, len(c.last))
	for k, v := range c.last {
		out[k] = v
	}
	return out
}

func (c *Conn) readLoop() {
	defer close(c.events)
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			c.pmu.Lock()
			for ref, ch := range c.pending {
				close(ch)
				delete(c.pending, ref)
			}
			c.pmu.Unlock()
			return
		}
		var f protocol.Frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.err = fmt.Errorf("server sent a malformed frame: %w", err)
			c.ws.Close()
			continue
		}
		if f.Type == protocol.TypeGoodbye {
			g := f
			c.goodbye.Store(&g)
		}
		collected := false
		c.pmu.Lock()
		if f.Seq > 0 && f.Room != "" && isRoomEvent(f.Type) {
			if f.Seq > c.last[f.Room] {
				c.last[f.Room] = f.Seq
			}
			if sc := c.syncs[f.Room]; sc != nil && f.Seq > sc.after {
				sc.frames[f.Seq] = f
				collected = true
			}
		}
		var waiter chan protocol.Frame
		if f.Ref != "" {
			waiter = c.pending[f.Ref]
			delete(c.pending, f.Ref)
		}
		c.pmu.Unlock()
		if waiter != nil {
			waiter <- f
			continue
		}
		if ev, ok := PluginEventOf(f); ok && c.opts.OnPluginEvent != nil {
			c.opts.OnPluginEvent(ev)
			continue
		}
		if !collected {
			c.events <- f
		}
	}
}

func isRoomEvent(t string) bool {
	switch t {
	case protocol.TypeMessage, protocol.TypeEdited, protocol.TypeDeleted, protocol.TypeReaction:
		return true
	}
	return false
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	return c.ws.Close()
}

// WriteRaw sends bytes as one text frame, unchecked (for tests of bad input).
func (c *Conn) WriteRaw(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// Write sends one frame without waiting for a reply.
func (c *Conn) Write(f protocol.ClientFrame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.WriteRaw(b)
}

// Call sends f with a ref (generated when empty) and waits for the reply
// that echoes it. An error frame becomes *Error.
func (c *Conn) Call(ctx context.Context, f protocol.ClientFrame) (protocol.Frame, error) {
	if f.Ref == "" {
		f.Ref = c.refPrefix + strconv.FormatUint(c.nextRef.Add(1), 10)
	}
	ch := make(chan protocol.Frame, 1)
	c.pmu.Lock()
	select {
	case <-c.done:
		c.pmu.Unlock()
		return protocol.Frame{}, ErrClosed
	default:
	}
	c.pending[f.Ref] = ch
	c.pmu.Unlock()
	if err := c.Write(f); err != nil {
		c.pmu.Lock()
		delete(c.pending, f.Ref)
		c.pmu.Unlock()
		return protocol.Frame{}, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return protocol.Frame{}, ErrClosed
		}
		if r.Type == protocol.TypeError {
			return r, &Error{Code: r.Code, Message: r.Message, RetryAfterMs: r.RetryAfterMs}
		}
		return r, nil
	case <-ctx.Done():
		c.pmu.Lock()
		delete(c.pending, f.Ref)
		c.pmu.Unlock()
		return protocol.Frame{}, ctx.Err()
	}
}

// SendOptions are the optional parts of a send.
type SendOptions struct {
	Ref    string // idempotency: repeating a ref returns the first ack
	Thread string
	Meta   json.RawMessage
}

// Send posts text to room and returns the ack (after the server committed it).
func (c *Conn) Send(ctx context.Context, room, text string, o ...SendOptions) (protocol.Frame, error) {
	f := protocol.ClientFrame{Type: protocol.TypeSend, Room: room, Text: &text}
	if len(o) > 0 {
		f.Ref, f.Thread, f.Meta = o[0].Ref, o[0].Thread, o[0].Meta
	}
	return c.Call(ctx, f)
}

// Edit replaces the text of message id.
func (c *Conn) Edit(ctx context.Context, room, id, text string) (protocol.Frame, error) {
	return c.Call(ctx, protocol.ClientFrame{Type: protocol.TypeEdit, Room: room, ID: id, Text: &text})
}

// Delete tombstones message id.
func (c *Conn) Delete(ctx context.Context, room, id string) (protocol.Frame, error) {
	return c.Call(ctx, protocol.ClientFrame{Type: protocol.TypeDelete, Room: room, ID: id})
}

// React adds (on) or removes an emoji reaction.
func (c *Conn) React(ctx context.Context, room, id, emoji string, on bool) (protocol.Frame, error) {
	return c.Call(ctx, protocol.ClientFrame{Type: protocol.TypeReact, Room: room, ID: id, Emoji: emoji, On: &on})
}

// Join joins room; the ack's Seq is the room's last seq.
func (c *Conn) Join(ctx context.Context, room string) (protocol.Frame, error) {
	return c.Call(ctx, protocol.ClientFrame{Type: protocol.TypeJoin, Room: room})
}

// Leave leaves room.
func (c *Conn) Leave(ctx context.Context, room string) (protocol.Frame, error) {
	return c.Call(ctx, protocol.ClientFrame{Type: protocol.TypeLeave, Room: room})
}

// Typing tells the room this user is typing (no reply unless it fails).
func (c *Conn) Typing(room string) error {
	return c.Write(protocol.ClientFrame{Type: protocol.TypeTyping, Room: room})
}

// Read marks room read up to seq.
func (c *Conn) Read(ctx context.Context, room string, seq int64) (protocol.Frame, error) {
	return c.Call(ctx, protocol.ClientFrame{Type: protocol.TypeRead, Room: room, Seq: &seq})
}

// Ping round-trips a ping frame.
func (c *Conn) Ping(ctx context.Context) error {
	_, err := c.Call(ctx, protocol.ClientFrame{Type: protocol.TypePing})
	return err
}

// Sync fetches every event of room with seq > after, paging until the server
// says there is no more, and returns them in seq order without duplicates.
// Replayed frames are returned, not delivered on Events; live events that
// arrive meanwhile are handed to Events when Sync returns, so do not call
// Sync from the only goroutine that drains Events while Events may be full.
func (c *Conn) Sync(ctx context.Context, room string, after int64) ([]protocol.Frame, error) {
	var out []protocol.Frame
	for {
		c.pmu.Lock()
		sc := &syncCollector{after: after, frames: map[int64]protocol.Frame{}}
		c.syncs[room] = sc
		c.pmu.Unlock()
		r, err := c.Call(ctx, protocol.ClientFrame{Type: protocol.TypeSync, Room: room, After: &after, Limit: 1000})
		c.pmu.Lock()
		delete(c.syncs, room)
		c.pmu.Unlock()
		if err != nil {
			return out, err
		}
		seqs := make([]int64, 0, len(sc.frames))
		for s := range sc.frames {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for _, s := range seqs {
			if s <= r.Upto {
				out = append(out, sc.frames[s])
			} else {
				// A live event that arrived while syncing: it belongs on Events.
				c.events <- sc.frames[s]
			}
		}
		if !r.More || r.Upto <= after {
			return out, nil
		}
		after = r.Upto
	}
}

// PluginOptions are the optional parts of a plugin frame.
type PluginOptions struct {
	// Room is the room the frame is about; only its members may send it.
	Room string
	// Data is any JSON value (at most 32 KiB).
	Data json.RawMessage
}

// Plugin sends op to plugin's namespace (a frame of type plugin) and returns
// the data of the plugin's reply. The plugin's refusals and failures are
// *Error values with the protocol's codes.
func (c *Conn) Plugin(ctx context.Context, plugin, op string, o ...PluginOptions) (json.RawMessage, error) {
	f := protocol.ClientFrame{Type: protocol.TypePlugin, Plugin: plugin, Op: op}
	if len(o) > 0 {
		f.Room, f.Data = o[0].Room, o[0].Data
	}
	r, err := c.Call(ctx, f)
	if err != nil {
		return nil, err
	}
	return r.Data, nil
}

// PluginEvent is an event a plugin published to this session (through a
// room it is in, its user, or the session itself).
type PluginEvent struct {
	Plugin, Name string
	// Room is set when the event was published to a room.
	Room string
	Data json.RawMessage
}

// PluginEventOf returns f as a plugin event; ok is false for other frames.
func PluginEventOf(f protocol.Frame) (ev PluginEvent, ok bool) {
	if f.Type != protocol.TypePluginEvent {
		return PluginEvent{}, false
	}
	return PluginEvent{Plugin: f.Plugin, Name: f.Name, Room: f.Room, Data: f.Data}, true
}
