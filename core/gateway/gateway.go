// Package gateway serves protocol v1 over WebSocket: handshake (origin,
// bearer token, subprotocol), one reader and one writer per session,
// keepalive, limits, and a graceful drain.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/metrics"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Ops maps every client frame type to the operations the enforcer decides
// for it (in the chat service, where the room is known). A frame type
// missing here is refused as unknown, so no op can bypass the enforcer; the
// coverage test checks that the matrix test walks each of these.
var Ops = map[string][]string{
	protocol.TypeSend:   {authz.OpMessageSend},
	protocol.TypeEdit:   {authz.OpMessageEdit, authz.OpMessageEditAny},
	protocol.TypeDelete: {authz.OpMessageDelete, authz.OpMessageDelAny},
	protocol.TypeReact:  {authz.OpMessageReact},
	protocol.TypeJoin:   {authz.OpRoomJoin},
	protocol.TypeLeave:  {authz.OpRoomLeave},
	protocol.TypeSync:   {authz.OpMessageRead},
	protocol.TypeTyping: {authz.OpRoomTyping},
	protocol.TypeRead:   {authz.OpRoomMarkRead},
	protocol.TypePing:   {PingOp},
	protocol.TypePlugin: {authz.OpPluginFrame},
}

// PingOp marks ping: a keepalive that touches no data and needs only the
// session's verified identity.
const PingOp = "keepalive"

// HandshakeOp marks GET /v1/ws: the upgrade needs a verified identity; what
// the session may do is decided per frame (Ops) and per delivery
// (message.read).
const HandshakeOp = "ws.connect"

// Options configures a Gateway. Zero values pick the documented defaults.
type Options struct {
	Chat    *chat.Service
	Auth    auth.Authenticator
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// AllowedOrigins lists exact origins (scheme://host[:port]) a browser
	// handshake may come from. The server's own origin is always allowed.
	AllowedOrigins []string
	// MaxFrame is the largest client frame in bytes (default 64 KiB); a larger
	// one closes the connection with 1009.
	MaxFrame int64
	// PingInterval is how often the server pings (default 25s).
	PingInterval time.Duration
	// IdleTimeout closes a session that sent nothing, not even a pong, for
	// this long (default 60s).
	IdleTimeout time.Duration
	// QueueFrames and QueueBytes bound a session's outbound queue (defaults
	// 4096 frames, 4 MiB). A session over either is a slow consumer: it gets
	// goodbye{reason: slow_consumer} and is closed.
	QueueFrames int
	QueueBytes  int
	// WriteTimeout bounds one socket write (default 10s).
	WriteTimeout time.Duration
	// HandshakeLimit limits handshakes per client address (nil: none).
	HandshakeLimit *ratelimit.Limiter
	// FrameRate limits client frames per connection (zero: none). A frame
	// over the rate is answered with error{code: rate_limited,
	// retry_after_ms} and not run.
	FrameRate ratelimit.Rate
	// ClientIP returns a request's client address (default: the TCP peer).
	ClientIP func(*fiber.Ctx) string
	// Events receives rate-limit refusals of handshakes and frames; frames'
	// actions carry the session's client address and User-Agent (nil: none).
	Events *secevent.Outbox
}

// Gateway accepts WebSocket sessions.
type Gateway struct {
	o        Options
	up       websocket.FastHTTPUpgrader
	draining atomic.Bool
	sessions sync.Map // id → *session; Drain waits for it to empty
	origins  map[string]bool
}

// New returns a Gateway.
func New(o Options) *Gateway {
	if o.MaxFrame <= 0 {
		o.MaxFrame = 64 << 10
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.QueueFrames <= 0 {
		o.QueueFrames = 4096
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 4 << 20
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ClientIP == nil {
		o.ClientIP = func(c *fiber.Ctx) string { return c.IP() }
	}
	g := &Gateway{o: o, origins: map[string]bool{}}
	for _, og := range o.AllowedOrigins {
		g.origins[strings.TrimRight(og, "/")] = true
	}
	g.up = websocket.FastHTTPUpgrader{
		// fasthttp's own read buffer sits below this one and batches
		// socket reads, so this buffer only needs to hold frame headers
		// and control frames; it is held by every idle session.
		ReadBufferSize:  256,
		WriteBufferSize: 256, // the session writer bypasses this buffer
		Subprotocols:    []string{protocol.Subprotocol},
		// Origin was checked before the upgrade (with a clear 403).
		CheckOrigin:      func(*fasthttp.RequestCtx) bool { return true },
		HandshakeTimeout: 10 * time.Second,
	}
	return g
}

// Draining reports whether the gateway has stopped accepting sessions.
func (g *Gateway) Draining() bool { return g.draining.Load() }

// Sessions returns the number of open sessions.
func (g *Gateway) Sessions() int {
	n := 0
	g.sessions.Range(func(_, _ any) bool { n++; return true })
	return n
}

func (g *Gateway) originAllowed(c *fiber.Ctx) bool {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return true // not a browser
	}
	if g.origins[origin] || g.origins["*"] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	// The server's own origin: same host:port as the request, over the
	// scheme this listener speaks.
	scheme := "http"
	if c.Protocol() == "https" {
		scheme = "https"
	}
	return u.Scheme == scheme && u.Host == string(c.Request().Host())
}

// bearer extracts the access token from the subprotocol list (browsers) or
// the Authorization header (everyone else).
func bearer(c *fiber.Ctx) string {
	for _, p := range strings.Split(c.Get(fiber.HeaderSecWebSocketProtocol), ",") {
		p = strings.TrimSpace(p)
		if strings.HasPrefix(p, protocol.BearerPrefix) {
			return p[len(protocol.BearerPrefix):]
		}
	}
	tok, _ := auth.BearerToken(c.Get(fiber.HeaderAuthorization))
	return tok
}

func (g *Gateway) refuse(c *fiber.Ctx, status int, code, result, msg string) error {
	if m := g.o.Metrics; m != nil {
		m.Handshakes.WithLabelValues(result).Inc()
	}
	return c.Status(status).JSON(protocol.ErrorBody{Code: code, Message: msg})
}

// Handler is the fiber handler for GET /v1/ws. Every refusal happens before
// the upgrade, with an HTTP status and a JSON error body.
func (g *Gateway) Handler(c *fiber.Ctx) error {
	if g.draining.Load() {
		c.Set(fiber.HeaderRetryAfter, "2")
		return g.refuse(c, fiber.StatusServiceUnavailable, protocol.CodeUnavailable, "draining", "server is shutting down; reconnect shortly")
	}
	if !websocket.FastHTTPIsWebSocketUpgrade(c.Context()) {
		return g.refuse(c, fiber.StatusUpgradeRequired, protocol.CodeBadRequest, "not_websocket", "this endpoint speaks WebSocket (protocol unhidra.v1)")
	}
	if !g.originAllowed(c) {
		g.o.Logger.Warn("websocket origin refused", "origin", c.Get(fiber.HeaderOrigin), "ip", g.o.ClientIP(c))
		return g.refuse(c, fiber.StatusForbidden, protocol.CodeForbidden, "forbidden_origin", "origin is not allowed")
	}
	ip := g.o.ClientIP(c)
	if ok, wait := g.o.HandshakeLimit.Allow(ip); !ok {
		g.o.Events.RateLimited(c.UserContext(), "ws_handshake", "address", ip, g.o.HandshakeLimit.Rate(), wait)
		e := chat.RateLimited(wait, "too many connection attempts from this address (limit %s)", g.o.HandshakeLimit.Rate())
		c.Set(fiber.HeaderRetryAfter, strconv.FormatInt((e.RetryAfterMs+999)/1000, 10))
		if m := g.o.Metrics; m != nil {
			m.Handshakes.WithLabelValues("rate_limited").Inc()
		}
		return c.Status(fiber.StatusTooManyRequests).JSON(protocol.ErrorBody{Code: e.Code, Message: e.Message, RetryAfterMs: e.RetryAfterMs})
	}
	tok := bearer(c)
	if tok == "" {
		return g.refuse(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, "unauthorized", "missing bearer token")
	}
	id, err := g.o.Auth.Authenticate(c.UserContext(), tok)
	if err != nil {
		return g.refuse(c, fiber.StatusUnauthorized, protocol.CodeUnauthorized, "unauthorized", err.Error())
	}
	if sn, ok := g.o.Auth.(seener); ok {
		sn.Seen(c.UserContext(), id)
	}
	// Register the session before the 101 goes out: from the moment a
	// client's handshake completes it receives every event of its rooms
	// (a client that connects and then sees a send must get it).
	s := newSession(g, id, g.o.Chat.NewSessionID())
	s.ctx = secevent.WithActor(secevent.WithRequest(context.Background(), ip, c.Get(fiber.HeaderUserAgent)), id.UserID)
	if err := g.register(c.UserContext(), s); err != nil {
		g.o.Logger.Error("open session", "user", id.UserID, "err", err)
		return g.refuse(c, fiber.StatusServiceUnavailable, protocol.CodeUnavailable, "open_failed", "could not open the session; retry shortly")
	}
	err = g.up.Upgrade(c.Context(), func(conn *websocket.Conn) {
		g.serve(s, conn)
	})
	if err != nil {
		g.abandon(s)
		return g.refuse(c, fiber.StatusBadRequest, protocol.CodeBadRequest, "bad_handshake", err.Error())
	}
	// fasthttp runs the hijack handler only if it could write the 101; if it
	// never runs, nothing else would end the registered session.
	time.AfterFunc(g.up.HandshakeTimeout, func() { g.abandon(s) })
	if m := g.o.Metrics; m != nil {
		m.Handshakes.WithLabelValues("ok").Inc()
	}
	return nil
}

// register makes s a live session: counted for drain, subscribed to its
// user's rooms, announced online.
func (g *Gateway) register(ctx context.Context, s *session) error {
	g.sessions.Store(s.id, s)
	// The session may have been revoked between the token check and now,
	// when CloseSessions could not see this socket yet. Revocation marks
	// the session before it closes sockets, and we registered before this
	// check, so one of the two always catches it.
	if rc, ok := g.o.Auth.(revocationChecker); ok && rc.Revoked(s.ident.SessionID) {
		s.shutdown(protocol.ReasonRevoked, websocket.ClosePolicyViolation, 0)
	}
	if m := g.o.Metrics; m != nil {
		m.Connections.Inc()
	}
	_, err := g.o.Chat.SessionOpened(ctx, s)
	if err != nil {
		g.sessions.Delete(s.id)
		if m := g.o.Metrics; m != nil {
			m.Connections.Dec()
		}
		return err
	}
	if g.draining.Load() { // drain began between the check in Handler and now
		s.shutdown(protocol.ReasonShutdown, websocket.CloseGoingAway, g.reconnectAfter())
	}
	return nil
}

// unregister undoes register.
func (g *Gateway) unregister(s *session) {
	g.o.Chat.SessionClosed(s)
	g.sessions.Delete(s.id)
	if m := g.o.Metrics; m != nil {
		m.Connections.Dec()
	}
}

// abandon ends a session whose socket never arrived. It does nothing once
// the session is attached.
func (g *Gateway) abandon(s *session) {
	if s.state.CompareAndSwap(statePending, stateAbandoned) {
		s.stop()
		g.unregister(s)
	}
}

func (g *Gateway) serve(s *session, conn *websocket.Conn) {
	if !s.state.CompareAndSwap(statePending, stateAttached) {
		_ = conn.Close() // abandoned meanwhile
		return
	}
	defer g.unregister(s)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	s.attach(conn) // starts the writer if frames are waiting, and pings
	s.readLoop(ctx)
	if s.isClosing() {
		// A goodbye is queued (idle timeout, oversize frame, drain): let
		// the writer put it on the wire before stopping it.
		select {
		case <-s.writerDone:
		case <-time.After(s.g.o.WriteTimeout):
		}
	}
	s.stop()
	<-s.writerDone
}

func (g *Gateway) reconnectAfter() int64 {
	return 1000 + rand.Int64N(4000) // spread reconnects of a drained node
}

// Drain stops accepting sessions, sends every session goodbye{reason:
// shutdown}, lets writers flush and waits until all sessions have ended or
// ctx is done.
func (g *Gateway) Drain(ctx context.Context) error {
	g.draining.Store(true)
	g.sessions.Range(func(_, v any) bool {
		v.(*session).shutdown(protocol.ReasonShutdown, websocket.CloseGoingAway, g.reconnectAfter())
		return true
	})
	// Poll rather than use a WaitGroup: handshakes may still register
	// sessions (which are then told goodbye) while Drain waits.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for g.Sessions() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			// Force the stragglers.
			g.sessions.Range(func(_, v any) bool { v.(*session).kill(); return true })
			return errors.New("drain: sessions still open at deadline; closed them")
		}
	}
	return nil
}

// revocationChecker is implemented by authenticators that can revoke
// sessions after their tokens were issued.
type revocationChecker interface {
	Revoked(sessionID string) bool
}

// seener is implemented by authenticators that record device activity.
type seener interface {
	Seen(ctx context.Context, id auth.Identity)
}

// CloseSessions ends every WebSocket whose auth session (token sid) is in
// sids with goodbye{reason}. It returns how many it closed.
func (g *Gateway) CloseSessions(sids map[string]bool, reason string) int {
	n := 0
	g.sessions.Range(func(_, v any) bool {
		s := v.(*session)
		if sids[s.ident.SessionID] {
			s.shutdown(reason, websocket.ClosePolicyViolation, 0)
			n++
		}
		return true
	})
	return n
}

// CloseUser ends every session of user with goodbye{reason} (revocation,
// deactivation).
func (g *Gateway) CloseUser(user, reason string) int {
	n := 0
	g.sessions.Range(func(_, v any) bool {
		s := v.(*session)
		if s.ident.UserID == user {
			s.shutdown(reason, websocket.ClosePolicyViolation, 0)
			n++
		}
		return true
	})
	return n
}
