package adminui_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gofiber/fiber/v2"

	adminui "github.com/unhidra/unhidra/admin-ui"
	"github.com/unhidra/unhidra/core/servertest"
)

func TestHandlerServesFilesAndPassesTheRest(t *testing.T) {
	h, err := adminui.Handler(adminui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	app.Use(h)
	app.Use(func(c *fiber.Ctx) error { return c.Status(404).SendString("next") })

	get := func(method, path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := app.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/js/app.js">`},
		{"/index.html", "text/html; charset=utf-8", "<title>Unhidra</title>"},
		{"/js/app.js", "text/javascript; charset=utf-8", "import"},
		{"/style.css", "text/css; charset=utf-8", ":root"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		res := get("GET", tc.path, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != tc.ctype || !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, res.StatusCode, res.Header.Get("Content-Type"), tc.contains, strings.Contains(string(body), tc.contains))
		}
		if res.Header.Get("Content-Security-Policy") != adminui.ContentSecurityPolicy || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: missing security headers: %v", tc.path, res.Header)
		}
		etag := res.Header.Get("ETag")
		if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: want ETag and no-cache, got %q %q", tc.path, etag, res.Header.Get("Cache-Control"))
		}
		if res2 := get("GET", tc.path, map[string]string{"If-None-Match": etag}); res2.StatusCode != 304 {
			t.Errorf("GET %s with its ETag: %d, want 304", tc.path, res2.StatusCode)
		}
	}
	// Anything else goes to the next handler: unknown paths, other methods,
	// folders, path tricks.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope.js"}, {"POST", "/"}, {"DELETE", "/index.html"}, {"GET", "/js"}, {"GET", "/js/"},
		{"GET", "/../adminui.go"}, {"GET", "/static/index.html"},
	} {
		res := get(tc.method, tc.path, nil)
		body, _ := io.ReadAll(res.Body)
		if string(body) != "next" {
			t.Errorf("%s %s: served %d %q, want it passed on", tc.method, tc.path, res.StatusCode, body)
		}
	}
}

func TestHandlerRefusesFilesWithoutIndex(t *testing.T) {
	_, err := adminui.Handler(adminui.Options{Files: fstest.MapFS{"app.js": {Data: []byte("x")}}})
	if err == nil || !strings.Contains(err.Error(), "index.html") {
		t.Fatalf("want an error naming index.html, got %v", err)
	}
}

// The core serves the console at / while every API route keeps its own
// answer, and unknown paths still get the JSON 404.
func TestServedByTheCore(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	for _, tc := range []struct {
		path   string
		status int
		ctype  string
		body   string
	}{
		{"/", 200, "text/html; charset=utf-8", "<!doctype html>"},
		{"/js/chat.js", 200, "text/javascript; charset=utf-8", "export class Chat"},
		{"/v1/rooms", 401, "application/json", `"code":"unauthorized"`},
		{"/healthz", 200, "application/json", `"ok"`},
		{"/no/such/page", 404, "application/json", `"code":"not_found"`},
	} {
		res, err := http.Get(env.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(body), tc.body) {
			t.Errorf("GET %s: %d %q %.80q; want %d %q containing %q", tc.path, res.StatusCode, res.Header.Get("Content-Type"), body, tc.status, tc.ctype, tc.body)
		}
	}
}
