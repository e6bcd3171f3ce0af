package pluginhost

import (
	"bufio"
	"context"
	"io"

	"github.com/gofiber/fiber/v2"

	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/sdk/plugin"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// httpChunk is the body part size on the wire.
const httpChunk = 32 << 10

// HandleHTTP serves /plugins/:id/* by streaming the request to the plugin's
// ServeHTTP hook and its response back as it arrives (chunked). The plugin
// sees the path below /plugins/{id}. A plugin that is down, or whose breaker
// is open, answers 503.
func (h *Host) HandleHTTP(c *fiber.Ctx) error {
	id := c.Params("id")
	m := h.plugin(id)
	if m == nil || !m.implements(pb.Hook_HOOK_SERVE_HTTP) {
		return chat.Errorf(protocol.CodeNotFound, "no plugin %q serving HTTP", id)
	}
	hs := m.hooks[pb.Hook_HOOK_SERVE_HTTP]
	head := &pb.HTTPRequestHead{Method: c.Method(), Path: "/" + c.Params("*"), RawQuery: string(c.Request().URI().QueryString()),
		RemoteAddr: c.IP()}
	c.Request().Header.VisitAll(func(k, v []byte) {
		head.Headers = append(head.Headers, &pb.Header{Name: string(k), Values: []string{string(v)}})
	})
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
