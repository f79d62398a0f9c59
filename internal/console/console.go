// Package console serves jobstream's web console: a page that submits jobs,
// shows them streaming live over any of the three read paths (SEMOSS
// pixelJobStreaming polling, native long-poll, SSE), cancels them, and
// lists and replays the key's past jobs.
//
// The console is plain HTML, CSS and JavaScript modules embedded in the
// binary (static/), so running or testing it needs no build step and no
// network. It talks only to the public APIs, as any other client would:
// it logs in with POST /Monolith/api/auth/login (the SEMOSS session
// cookie, HttpOnly, never visible to the page's script) or, in --dev,
// rides the anonymous session GET /Monolith/api/config hands out. The only
// thing it keeps in localStorage is the chosen transport.
//
// Its pages carry a Content-Security-Policy that allows scripts, styles,
// images and connections from the serving origin only, and no inline
// script or style at all; the API's own security headers (nosniff, no
// framing, no referrer, no-store) apply on top, from the router.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every console response: nothing
// but same-origin scripts, styles, images and fetches; no inline code, no
// plugins, no framing, and forms that post only to this origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// AssetPrefix is the path under which the console's assets are served
// (the page itself is served at /).
const AssetPrefix = "/console/"

// Handler serves the console: the page at "/" and its assets under
// AssetPrefix. Mount it on exactly those two routes, so that every other
// path keeps the API's own 404.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Security-Policy", CSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch {
		case r.URL.Path == "/":
			serveFile(w, r, sub, "index.html")
		case strings.HasPrefix(r.URL.Path, AssetPrefix):
			name := strings.TrimPrefix(r.URL.Path, AssetPrefix)
			if name == "" || name == "index.html" || strings.HasSuffix(name, "/") ||
				!utf8.ValidString(name) || !fs.ValidPath(name) {
				// No directory listings, and the page has one address. A
				// name no file can have (invalid UTF-8 such as %ff or the
				// overlong %c0%ae, "..", an empty element) is not found
				// either: fs.Sub refuses it, which FileServer would answer
				// with a 500.
				http.NotFound(w, r)
				return
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + name
			files.ServeHTTP(w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}

func serveFile(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		http.Error(w, "console asset missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Set, not left to net/http, so that HEAD says it as GET does.
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
