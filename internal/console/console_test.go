package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/console"
)

// TestHandler: the page and its assets are served with the console's CSP
// and the right types; anything else (directory listings, other paths,
// writes) is not.
func TestHandler(t *testing.T) {
	t.Parallel()
	h := console.Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		typ, body    string
	}{
		{"GET", "/", 200, "text/html", `<script type="module" src="/console/app.js">`},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/console/app.js", 200, "text/javascript", "import"},
		{"GET", "/console/transports.js", 200, "text/javascript", "pixelJobStreaming"},
		{"GET", "/console/console.css", 200, "text/css", "prefers-color-scheme"},
		{"GET", "/console/icon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/console/", 404, "", ""},
		{"GET", "/console/index.html", 404, "", ""},
		{"GET", "/console/nothing.js", 404, "", ""},
		{"GET", "/elsewhere", 404, "", ""},
		// Names no file can have are not found, never a 500 (issue 18,
		// item 8): invalid UTF-8, an overlong dot, parent and empty
		// elements.
		{"GET", "/console/%ff", 404, "", ""},
		{"GET", "/console/a%ff.js", 404, "", ""},
		{"GET", "/console/%c0%ae", 404, "", ""},
		{"GET", "/console/%c0%ae%c0%ae/app.js", 404, "", ""},
		{"GET", "/console/a//b.js", 404, "", ""},
		{"GET", "/console/./app.js", 404, "", ""},
		{"POST", "/", 405, "", ""},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if got := res.Header.Get("Content-Security-Policy"); got != console.CSP {
			t.Errorf("%s %s: CSP %q, want %q", tc.method, tc.path, got, console.CSP)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.typ) {
			t.Errorf("%s %s: Content-Type %q, want %s", tc.method, tc.path, ct, tc.typ)
		}
		if !strings.Contains(string(body), tc.body) {
			t.Errorf("%s %s: body lacks %q", tc.method, tc.path, tc.body)
		}
	}
}

// TestCSPAllowsNoInlineCode: the policy names no 'unsafe-inline', no
// 'unsafe-eval' and no other origin, and the page holds no inline script,
// style or event handler that it would have to allow.
func TestCSPAllowsNoInlineCode(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*", "data:"} {
		if strings.Contains(console.CSP, bad) {
			t.Errorf("CSP allows %q: %s", bad, console.CSP)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	console.Handler().ServeHTTP(w, r)
	page := w.Body.String()
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", " onsubmit=", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q, which its CSP forbids", bad)
		}
	}
	if strings.Count(page, "<script") != 1 || !strings.Contains(page, `<script type="module" src=`) {
		t.Errorf("the page should load exactly one external module script")
	}
}
