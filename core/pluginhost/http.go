package pluginhost

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// httpChunk is the body part size on the wire.
const httpChunk = 32 << 10

// HTTPOptions configures the /plugins/{id}/ handler.
type HTTPOptions struct {
	// Auth verifies a request's bearer access token, as the REST API does
	// (nil: every request reaches plugins anonymous).
	Auth auth.Authenticator
	// ClientIP resolves the client address through the trusted proxies
	// (default: the TCP peer).
	ClientIP func(*fiber.Ctx) string
	// Logger defaults to the host's.
	Logger *slog.Logger
}

// HTTPHandler returns the handler of /plugins/:id/*: it streams the request
// to the plugin's ServeHTTP hook and its response back as it arrives
// (chunked). The plugin sees the path below /plugins/{id}, never the
// caller's credentials (see requestHead), and sets only its own cookies. A
// plugin that is down, or whose breaker is open, answers 503.
func (h *Host) HTTPHandler(o HTTPOptions) fiber.Handler {
	if o.ClientIP == nil {
		o.ClientIP = func(c *fiber.Ctx) string { return c.IP() }
	}
	if o.Logger == nil {
		o.Logger = h.o.Logger
	}
	return func(c *fiber.Ctx) error { return h.serveHTTP(c, o) }
}

func (h *Host) serveHTTP(c *fiber.Ctx, o HTTPOptions) error {
	id := c.Params("id")
	m := h.plugin(id)
	if m == nil || !m.implements(pb.Hook_HOOK_SERVE_HTTP) {
		return chat.Errorf(protocol.CodeNotFound, "no plugin %q serving HTTP", id)
	}
	hs := m.hooks[pb.Hook_HOOK_SERVE_HTTP]
	head := requestHead(c, id, o)
	body := c.Body()
	// The stream outlives this handler (the body is written later by
	// fasthttp), so it gets its own context, cancelled when writing ends.
	ctx, cancel := context.WithCancel(context.Background())
	var first *pb.HTTPResponsePart
	var stream pb.Plugin_ServeHTTPClient
	err := m.call(ctx, hs, func(cctx context.Context, r *plugin.Remote) error {
		var err error
		// The deadline covers the whole exchange, so the stream uses cctx's
		// deadline but must not be cancelled when call returns.
		dl, _ := cctx.Deadline()
		sctx, scancel := context.WithDeadline(ctx, dl)
		go func() { <-ctx.Done(); scancel() }()
		stream, err = r.ServeHTTP(sctx)
		if err != nil {
			return err
		}
		part := &pb.HTTPRequestPart{Head: head}
		for {
			n := min(len(body), httpChunk)
			part.Body = body[:n]
			body = body[n:]
			if err := stream.Send(part); err != nil {
				return err
			}
			part = &pb.HTTPRequestPart{}
			if len(body) == 0 {
				break
			}
		}
		if err := stream.CloseSend(); err != nil {
			return err
		}
		first, err = stream.Recv()
		if err != nil {
			return err
		}
		if first.Head == nil || first.Head.Status < 100 || first.Head.Status > 999 {
			return errBadVerdict
		}
		return nil
	})
	if err != nil {
		cancel()
		m.log().Warn("plugin HTTP request failed", "path", head.Path, "err", err)
		return chat.Errorf(protocol.CodeUnavailable, "plugin %s is unavailable", id)
	}
	c.Status(int(first.Head.Status))
	for _, hd := range first.Head.Headers {
		for _, v := range hd.Values {
			if strings.EqualFold(hd.Name, fiber.HeaderSetCookie) {
				if why := foreignCookie(id, v); why != "" {
					m.log().Warn("plugin HTTP response: Set-Cookie dropped", "path", head.Path, "why", why)
					continue
				}
			}
			c.Response().Header.Add(hd.Name, v)
		}
	}
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		if len(first.Body) > 0 {
			if _, err := w.Write(first.Body); err != nil {
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
		}
		for {
			p, err := stream.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				m.log().Warn("plugin HTTP response interrupted", "path", head.Path, "err", err)
				return
			}
			if _, err := w.Write(p.Body); err != nil {
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
		}
	})
	return nil
}

// requestHead is what plugin id learns of a request: method, path below
// /plugins/{id}, query without access_token, the headers without
// Authorization, Proxy-Authorization and Sec-WebSocket-Protocol (which
// carries bearer.<token>), only the plugin's own cookies (unhidra-<id>-…),
// the trusted-proxy-resolved client address and, when the request carried a
// valid access token, the verified user and session. An invalid token makes
// the request anonymous rather than refused: pages such as an SSO callback
// must work without one.
func requestHead(c *fiber.Ctx, id string, o HTTPOptions) *pb.HTTPRequestHead {
	head := &pb.HTTPRequestHead{Method: c.Method(), Path: "/" + c.Params("*"),
		RawQuery: withoutParam(string(c.Request().URI().QueryString()), "access_token"), RemoteAddr: o.ClientIP(c)}
	if tok, ok := auth.BearerToken(c.Get(fiber.HeaderAuthorization)); ok && o.Auth != nil {
		if who, err := o.Auth.Authenticate(c.UserContext(), tok); err == nil {
			head.UserId, head.SessionId = who.UserID, who.SessionID
		} else {
			o.Logger.Info("plugin HTTP request with an invalid access token; passed on anonymous",
				"plugin", id, "ip", head.RemoteAddr, "err", err)
		}
	}
	c.Request().Header.VisitAll(func(k, v []byte) {
		name := string(k)
		switch {
		case strings.EqualFold(name, fiber.HeaderAuthorization), strings.EqualFold(name, fiber.HeaderProxyAuthorization),
			strings.EqualFold(name, fiber.HeaderSecWebSocketProtocol), strings.EqualFold(name, fiber.HeaderCookie):
			return
		}
		head.Headers = append(head.Headers, &pb.Header{Name: name, Values: []string{string(v)}})
	})
	own := "unhidra-" + id + "-"
	var cookies []string
	c.Request().Header.VisitAllCookie(func(k, v []byte) {
		if strings.HasPrefix(string(k), own) {
			cookies = append(cookies, string(k)+"="+string(v))
		}
	})
	if len(cookies) > 0 {
		head.Headers = append(head.Headers, &pb.Header{Name: fiber.HeaderCookie, Values: []string{strings.Join(cookies, "; ")}})
	}
	return head
}

// withoutParam drops every name=value pair named name from a raw query,
// leaving the others byte for byte.
func withoutParam(raw, name string) string {
	if raw == "" {
		return raw
	}
	var kept []string
	for _, part := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); k == name || (err == nil && uk == name) {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}

// foreignCookie says why a Set-Cookie from plugin id may not reach the
// browser ("" when it may): the name must start with unhidra-<id>-, and it
// may set neither a Domain nor a Path outside /plugins/<id>/.
func foreignCookie(id, v string) string {
	ck, err := http.ParseSetCookie(v)
	if err != nil {
		return "unparseable: " + err.Error()
	}
	base := "/plugins/" + id
	switch {
	case !strings.HasPrefix(ck.Name, "unhidra-"+id+"-"):
		return "name " + ck.Name + " is outside the plugin's namespace unhidra-" + id + "-"
	case ck.Domain != "":
		return "cookie " + ck.Name + " sets a Domain"
	case ck.Path != "" && ck.Path != base && !strings.HasPrefix(ck.Path, base+"/"):
		return "cookie " + ck.Name + " sets Path " + ck.Path + " outside " + base + "/"
	}
	return ""
}
