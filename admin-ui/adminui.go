// Package adminui embeds the web console (plain HTML, CSS and standard
// JavaScript modules under static/) and serves it. There is no build step:
// the files in static/ are exactly what the browser runs, so `go run` and
// `go build` need nothing but Go.
//
// The console uses only the public REST and WebSocket API (/v1/…); the core
// mounts Handler after its own routes so that API routes always win.
package adminui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

//go:embed static
var embedded embed.FS

// FS returns the console's files, rooted at the folder that holds index.html.
func FS() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil { // "static" is embedded above; this cannot fail
		panic(err)
	}
	return sub
}

// ContentSecurityPolicy is sent with every console file. The console loads
// nothing from elsewhere and runs no inline script, so it can be strict.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// Options configures Handler.
type Options struct {
	// Files overrides the embedded files (tests, or a developer serving a
	// working copy with os.DirFS to edit without rebuilding).
	Files fs.FS
}

type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the console: "/" is index.html, other paths are files
// under static/. A GET or HEAD for anything it does not hold passes to the
// next handler, so the core's JSON 404 stays the answer for unknown paths.
// Files are read once at construction; responses carry a strong ETag and
// "no-cache", so browsers revalidate cheaply and never run a stale console.
func Handler(o Options) (fiber.Handler, error) {
	files := o.Files
	if files == nil {
		files = FS()
	}
	table := map[string]file{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return fmt.Errorf("read console file %s: %w", p, err)
		}
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // don't depend on the host's mime database
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		table["/"+p] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load console files: %w", err)
	}
	if _, ok := table["/index.html"]; !ok {
		return nil, fmt.Errorf("console files have no index.html")
	}
	table["/"] = table["/index.html"]
	return func(c *fiber.Ctx) error {
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			return c.Next()
		}
		f, ok := table[c.Path()]
		if !ok {
			return c.Next()
		}
		c.Set(fiber.HeaderContentSecurityPolicy, ContentSecurityPolicy)
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
		c.Set(fiber.HeaderXFrameOptions, "DENY")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderETag, f.etag)
		c.Set(fiber.HeaderContentType, f.ctype)
		if match := c.Get(fiber.HeaderIfNoneMatch); match != "" && strings.Contains(match, f.etag) {
			return c.SendStatus(fiber.StatusNotModified)
		}
		return c.Send(f.body)
	}, nil
}
