// Package server wires the core together: store, auth, chat, hub, gateway and
// REST API on one fiber app, plus health, readiness and metrics, and runs it
// until its context ends, then drains.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"

	adminui "github.com/unhidra/unhidra/admin-ui"
	"github.com/unhidra/unhidra/core/api"
	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/clientip"
	"github.com/unhidra/unhidra/core/gateway"
	"github.com/unhidra/unhidra/core/hub"
	"github.com/unhidra/unhidra/core/listener"
	"github.com/unhidra/unhidra/core/metrics"
	"github.com/unhidra/unhidra/core/pluginhost"
	"github.com/unhidra/unhidra/core/ratelimit"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// Server is a running Unhidra core.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     *store.Store
	committer *store.Committer
	auth      *auth.Service
	authz     *authz.Enforcer
	api       *api.API
	chat      *chat.Service
	gw        *gateway.Gateway
	app       *fiber.App
	ln        net.Listener
	ips       *clientip.Resolver
	metrics   *metrics.Metrics
	stopAuth  context.CancelFunc
	authDone  chan struct{}
	plugins   *pluginhost.Host
	events    *secevent.Outbox
}

type limits struct {
	api      api.Limits
	messages *ratelimit.Limiter
	actions  *ratelimit.Limiter
	rooms    *ratelimit.Limiter
	frames   ratelimit.Rate
}

// newLimits builds the limiters from the config; with --rate-limits=off
// every one is nil (unlimited) and the log says so loudly.
func newLimits(cfg Config, log *slog.Logger) limits {
	if cfg.RateLimits == "off" {
		log.Warn("RATE LIMITS ARE OFF (--rate-limits=off / UNHIDRA_RATE_LIMITS=off). This setting is for benchmarks only; " +
			"never run a reachable server like this.")
		return limits{}
	}
	// Per-address limits count an IPv6 client by its /64 (clientip.Key).
	return limits{
		api: api.Limits{Login: ratelimit.New(cfg.RateLogin).KeyedBy(clientip.Key), Register: ratelimit.New(cfg.RateRegister).KeyedBy(clientip.Key),
			IP: ratelimit.New(cfg.RateIP).KeyedBy(clientip.Key)},
		messages: ratelimit.New(cfg.RateUserMessages),
		actions:  ratelimit.New(cfg.RateUserActions),
		rooms:    ratelimit.New(cfg.RateUserRooms),
		frames:   cfg.RateFrames,
	}
}

// New opens the database and builds the server; it does not listen yet.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	// The embedded web console; built first, so a broken one leaves nothing to clean up.
	console, err := adminui.Handler(adminui.Options{})
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Options{DSN: cfg.DatabaseURL, DataDir: cfg.DataDir, SQLiteSync: cfg.SQLiteSync})
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	evs, err := secevent.New(ctx, secevent.Options{Store: st, Max: cfg.SecurityEventsMax, Logger: log, Metrics: m})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	com := st.NewCommitter(store.CommitterOptions{Logger: log, OnBatch: func(n int) { m.CommitBatch.Observe(float64(n)) }})
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	az, err := authz.New(ctx, authz.Options{Store: st, Logger: log, Events: evs})
	if err != nil {
		com.Close()
		evs.Close()
		_ = st.Close()
		return nil, err
	}
	reattach, err := pluginhost.ParseReattach(cfg.PluginReattach)
	if err != nil {
		com.Close()
		evs.Close()
		_ = st.Close()
		return nil, err
	}
	ph := pluginhost.New(pluginhost.Options{Path: cfg.Plugins, Store: st, Metrics: m, Logger: log, Authorizer: pluginAuthz{az},
		Builtins: cfg.Builtins, Reattach: reattach, Executable: cfg.PluginExecutable, MissingOK: cfg.Plugins == DefaultConfig().Plugins && !cfg.PluginsNamed,
		WASMCacheDir: filepath.Join(cfg.DataDir, "wasm-cache"), Events: evs})
	au, err := auth.New(ctx, auth.Options{Store: st, DataDir: cfg.DataDir, KeysDir: cfg.KeysDir, Alg: cfg.JWTAlg,
		AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL, Registration: cfg.Registration,
		KeyRotation: cfg.KeyRotation, KeyPublishLead: cfg.KeyPublishLead, Logger: log,
		Argon2:      auth.Argon2Params{Time: uint32(cfg.Argon2Time), Memory: uint32(cfg.Argon2Memory), Threads: uint8(cfg.Argon2Threads)},
		Hooks:       ph,
		MaxSessions: cfg.MaxUserSessions,
		Events:      evs,
		Lockout: auth.LockoutOptions{Threshold: cfg.LockoutThreshold, IPThreshold: cfg.LockoutIPThreshold,
			Window: cfg.LockoutWindow, Base: cfg.LockoutBase, Max: cfg.LockoutMax}})
	if err != nil {
		com.Close()
		evs.Close()
		_ = st.Close()
		return nil, err
	}
	lim := newLimits(cfg, log)
	ips, err := clientip.New(cfg.TrustedProxies)
	if err != nil {
		com.Close()
		evs.Close()
		_ = st.Close()
		return nil, err
	}
	h := hub.New()
	ch := chat.New(chat.Options{Store: st, Committer: com, Hub: h, Authz: az, Metrics: m, Logger: log, Hooks: ph,
		MessageLimit: lim.messages, ActionLimit: lim.actions, RoomLimit: lim.rooms, Events: evs})
	if err := ph.Start(ctx, pluginhost.Services{Chat: ch, Auth: au, Authz: az}); err != nil {
		ph.Close()
		com.Close()
		evs.Close()
		_ = st.Close()
		return nil, fmt.Errorf("plugins: %w", err)
	}
	gw := gateway.New(gateway.Options{Chat: ch, Auth: au, Metrics: m, Logger: log, AllowedOrigins: cfg.AllowedOrigins,
		MaxFrame: cfg.MaxFrame, PingInterval: cfg.PingInterval, IdleTimeout: cfg.IdleTimeout,
		HandshakeLimit: lim.api.IP, FrameRate: lim.frames, ClientIP: ips.IP,
		QueueFrames: cfg.QueueFrames, QueueBytes: cfg.QueueBytes, WriteTimeout: cfg.WriteTimeout, Events: evs})
	// Revoked sessions (here or, via the database poll, on another node)
	// lose their live WebSockets at once.
	au.OnRevoke(func(rs []auth.Revocation) {
		sids := make(map[string]bool, len(rs))
		for _, r := range rs {
			sids[r.SessionID] = true
		}
		gw.CloseSessions(sids, protocol.ReasonRevoked)
	})
	runCtx, runCancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: log, store: st, committer: com, auth: au, authz: az, chat: ch, gw: gw, metrics: m, stopAuth: runCancel, authDone: make(chan struct{}), plugins: ph, ips: ips, events: evs}
	go func() { defer close(s.authDone); au.Run(runCtx) }()
	a := api.New(api.Options{Chat: ch, Auth: au, Authz: az, Store: st, Metrics: m, Logger: log, Limits: lim.api, ClientIP: ips.IP, Events: evs,
		LoginMethods: ph.LoginMethods})
	s.api = a
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		// Values from c.Params, c.Query and c.Get outlive the request (the
		// send path publishes after the REST handler returned), so they
		// must not alias fasthttp's reused buffers.
		Immutable:      true,
		UnescapePath:   true,
		BodyLimit:      1 << 20,
		ReadBufferSize: 8192,
		// A connection gets --header-timeout for the request line and
		// headers (from accept, or from the first byte of a keep-alive
		// request), then bodyReadTimeout for the body (HeaderReceived).
		ReadTimeout: cfg.HeaderTimeout,
		IdleTimeout: 120 * time.Second,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			return a.Error(c, err)
		},
	})
	hs := app.Server()
	hs.HeaderReceived = func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
		return fasthttp.RequestConfig{ReadTimeout: bodyReadTimeout}
	}
	hs.ErrorHandler = s.unreadRequest
	hs.SecureErrorLogMessage = true // read errors never quote the request (its Authorization header)
	// Security events name the request's trusted-proxy resolved client
	// address and User-Agent.
	app.Use(func(c *fiber.Ctx) error {
		c.SetUserContext(secevent.WithRequest(c.UserContext(), ips.IP(c), c.Get(fiber.HeaderUserAgent)))
		return c.Next()
	})
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})))
	app.Get("/v1/ws", gw.Handler)
	a.Register(app)
	a.RegisterPluginAdmin(app, ph)
	pluginHTTP := ph.HTTPHandler(pluginhost.HTTPOptions{Auth: au, ClientIP: ips.IP, Logger: log})
	for _, method := range []string{fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete} {
		app.Add(method, "/plugins/:id/*", pluginHTTP)
	}
	// The web console, mounted after every API route so those always win; it
	// answers only for its own files and passes anything else on to the 404.
	app.Use(console)
	app.Use(func(c *fiber.Ctx) error {
		return a.Error(c, chat.Errorf(protocol.CodeNotFound, "no route %s %s", c.Method(), c.Path()))
	})
	s.app = app
	return s, nil
}

// bodyReadTimeout bounds reading a REST request body once its headers are in.
const bodyReadTimeout = 30 * time.Second

// unreadRequest answers a request that could not be read, so never reached a
// route: no complete request within --header-timeout (or its body within
// bodyReadTimeout), malformed or oversized headers, a body over the limit.
// Each is the client's doing: bad_request or too_large, logged at debug,
// never counted as internal.
func (s *Server) unreadRequest(ctx *fasthttp.RequestCtx, err error) {
	status, body := fasthttp.StatusBadRequest, protocol.ErrorBody{Code: protocol.CodeBadRequest, Message: "malformed HTTP request"}
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), strings.Contains(err.Error(), "timeout"):
		status, body.Message = fasthttp.StatusRequestTimeout, "the request did not arrive in time"
	case errors.As(err, &small):
		status, body = fasthttp.StatusRequestHeaderFieldsTooLarge, protocol.ErrorBody{Code: protocol.CodeTooLarge, Message: "request headers are too large"}
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, body = fasthttp.StatusRequestEntityTooLarge, protocol.ErrorBody{Code: protocol.CodeTooLarge, Message: "request body is too large"}
	}
	s.log.Debug("request not read", "ip", ctx.RemoteIP(), "status", status, "err", err)
	s.metrics.ErrorsSent.WithLabelValues(body.Code).Inc()
	b, _ := json.Marshal(body)
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType(fiber.MIMEApplicationJSON)
	ctx.SetBody(b)
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if s.gw.Draining() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "draining"})
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "database unreachable"})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// Metrics exposes the server's collectors.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// App exposes the fiber app (for adding routes, e.g. the admin console).
func (s *Server) App() *fiber.App { return s.app }

// Chat exposes the chat service.
func (s *Server) Chat() *chat.Service { return s.chat }

// Auth exposes the auth service (keys, sessions, revocation).
func (s *Server) Auth() *auth.Service { return s.auth }

// Authz exposes the enforcer (e.g. for the plugin host's Authorizer).
func (s *Server) Authz() *authz.Enforcer { return s.authz }

// Routes lists every REST route with the operations the enforcer decides
// for it, plus the server's own infrastructure routes (public) and the
// WebSocket endpoint (whose frames are decided per op, see gateway.Ops).
func (s *Server) Routes() []api.Route {
	rs := []api.Route{
		{Method: "GET", Path: "/healthz", Ops: []string{api.Public}},
		{Method: "GET", Path: "/readyz", Ops: []string{api.Public}},
		{Method: "GET", Path: "/metrics", Ops: []string{api.Public}},
		{Method: "GET", Path: "/v1/ws", Ops: []string{gateway.HandshakeOp}},
	}
	// A plugin's own HTTP surface (webhooks, OAuth callbacks…): public; the
	// plugin decides, told the verified user when the request carried a
	// valid access token (never the token). What the plugin may then do is
	// decided by its grants (plugin:<id>) through the enforcer.
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		rs = append(rs, api.Route{Method: m, Path: "/plugins/:id/*", Ops: []string{api.Public}})
	}
	return append(rs, s.api.Routes()...)
}

// Events exposes the security event stream.
func (s *Server) Events() *secevent.Outbox { return s.events }

// Store exposes the store.
func (s *Server) Store() *store.Store { return s.store }

// Plugins exposes the plugin host.
func (s *Server) Plugins() *pluginhost.Host { return s.plugins }

// ReloadPlugins re-reads plugins.yaml (SIGHUP); sessions are untouched.
func (s *Server) ReloadPlugins(ctx context.Context) error {
	_, err := s.plugins.Reload(ctx)
	return err
}

// Gateway exposes the gateway.
func (s *Server) Gateway() *gateway.Gateway { return s.gw }

// Listen binds the address (TLS when configured) behind the connection caps
// (--max-conns, --max-conns-per-ip). It returns the bound address, which
// matters when Addr has port 0.
func (s *Server) Listen() (net.Addr, error) {
	var tc *tls.Config
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS key pair %s, %s: %w", s.cfg.TLSCert, s.cfg.TLSKey, err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = listener.New(ln, listener.Options{MaxConns: s.cfg.MaxConns, MaxConnsPerAddr: s.cfg.MaxConnsPerIP,
		Exempt: s.ips.Trusted, TLS: tc, Metrics: s.metrics, Logger: s.log})
	return s.ln.Addr(), nil
}

// Serve runs until ctx ends, then drains: /readyz and new WebSocket
// handshakes turn 503 (the listener stays open so that load balancers see
// it), every session gets goodbye{shutdown} after its queue is flushed, the
// listener closes, the committer finishes queued writes, and the database
// closes.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(s.ln) }()
	select {
	case err := <-errc:
		s.closeBackends()
		return err
	case <-ctx.Done():
	}
	return s.Shutdown()
}

// Close releases a server that never served (e.g. Listen failed): plugins
// stop, the database closes.
func (s *Server) Close() {
	s.closeBackends()
}

// Shutdown drains and stops the server.
func (s *Server) Shutdown() error {
	s.log.Info("draining", "sessions", s.gw.Sessions())
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	derr := s.gw.Drain(dctx)
	if err := s.app.ShutdownWithTimeout(2 * time.Second); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
		s.log.Warn("http shutdown", "err", err)
	}
	s.closeBackends()
	s.log.Info("stopped")
	return derr
}

func (s *Server) closeBackends() {
	s.plugins.Close()
	s.authz.Close()
	s.stopAuth()
	<-s.authDone
	s.committer.Close()
	s.events.Close() // after everything that emits
	_ = s.store.Close()
}

// pluginAuthz lets the enforcer decide plugin host-API calls: subject
// plugin:<id>, operation plugin.<capability>; the grants of plugins.yaml are
// its allow rules, and stored deny rules override them.
type pluginAuthz struct{ e *authz.Enforcer }

func (p pluginAuthz) AuthorizePlugin(ctx context.Context, r pluginhost.AuthzRequest) error {
	return p.e.AuthorizePlugin(ctx, r.Plugin, r.Capability, r.Grants)
}
