package api

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/unhidra/unhidra/core/authz"
	"github.com/unhidra/unhidra/core/chat"
	"github.com/unhidra/unhidra/core/pluginhost"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// RegisterPluginAdmin mounts GET /v1/admin/plugins (state, hooks and
// counters of every plugin in plugins.yaml) and POST
// /v1/admin/plugins/reload (re-read plugins.yaml; an invalid file is refused
// with 400 and changes nothing), and POST /v1/admin/plugins/{id}/enable and
// …/disable (set `enabled:` in plugins.yaml, then reload). All are the
// plugins.manage operation (superadmins by default).
func (a *API) RegisterPluginAdmin(r fiber.Router, h *pluginhost.Host) {
	a.sys(r, "GET", "/v1/admin/plugins", authz.OpPluginsManage, func(c *fiber.Ctx) error { return c.JSON(h.Status()) })
	a.sys(r, "POST", "/v1/admin/plugins/reload", authz.OpPluginsManage, func(c *fiber.Ctx) error {
		res, err := h.Reload(c.UserContext())
		if err != nil {
			return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "plugins.yaml rejected, nothing changed: %v", err))
		}
		return c.JSON(res)
	})
	toggle := func(on bool) fiber.Handler {
		return func(c *fiber.Ctx) error {
			res, err := h.SetEnabled(c.UserContext(), c.Params("id"), on)
			if errors.Is(err, pluginhost.ErrUnknownPlugin) {
				return a.Error(c, chat.Errorf(protocol.CodeNotFound, "plugin %q is not in plugins.yaml", c.Params("id")))
			}
			if err != nil {
				return a.Error(c, chat.Errorf(protocol.CodeBadRequest, "plugins.yaml not changed: %v", err))
			}
			return c.JSON(res)
		}
	}
	a.sys(r, "POST", "/v1/admin/plugins/:id/enable", authz.OpPluginsManage, toggle(true))
	a.sys(r, "POST", "/v1/admin/plugins/:id/disable", authz.OpPluginsManage, toggle(false))
}
