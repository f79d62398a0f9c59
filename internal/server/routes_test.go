package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jobstream/jobstream/internal/console"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/server"
)

// TestConsoleHEAD: HEAD on the console's page and assets answers as GET
// does (status, type, length, CSP), without the body, through the real
// route table; what has no GET route (a 404 asset, the API's routes) does
// not turn into a 200.
func TestConsoleHEAD(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(server.NewAPI(server.APIDeps{Auth: httpapi.DevAuth{}}))
	t.Cleanup(srv.Close)
	do := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}
	for _, path := range []string{"/", "/console/app.js", "/console/console.css", "/console/icon.svg", "/console/nothing.js", "/console/"} {
		get, body := do(http.MethodGet, path)
		head, hbody := do(http.MethodHead, path)
		if head.StatusCode != get.StatusCode {
			t.Errorf("HEAD %s: %d, GET %d", path, head.StatusCode, get.StatusCode)
			continue
		}
		if len(hbody) != 0 {
			t.Errorf("HEAD %s: %d bytes of body", path, len(hbody))
		}
		if get.StatusCode != http.StatusOK {
			continue
		}
		for _, h := range []string{"Content-Type", "Content-Security-Policy", "X-Content-Type-Options"} {
			if head.Header.Get(h) != get.Header.Get(h) {
				t.Errorf("HEAD %s: %s %q, GET %q", path, h, head.Header.Get(h), get.Header.Get(h))
			}
		}
		if head.Header.Get("Content-Security-Policy") != console.CSP {
			t.Errorf("HEAD %s: no console CSP", path)
		}
		if head.ContentLength != int64(len(body)) {
			t.Errorf("HEAD %s: Content-Length %d, GET's body is %d bytes", path, head.ContentLength, len(body))
		}
	}
	// The API's own routes keep their methods.
	if res, _ := do(http.MethodHead, "/v1/jobs"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD /v1/jobs: %d, want 405", res.StatusCode)
	}
	if res, _ := do(http.MethodPost, "/"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", res.StatusCode)
	}
}
