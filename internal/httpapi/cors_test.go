package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	do := func(h http.Handler, method, origin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/v1/jobs", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if method == http.MethodOptions {
			r.Header.Set("Access-Control-Request-Method", "POST")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	t.Run("OffByDefault", func(t *testing.T) {
		t.Parallel()
		w := do(CORS(nil, ok), http.MethodGet, "https://evil.example")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("Allow-Origin = %q with CORS off", got)
		}
	})
	t.Run("AllowedOriginWithCredentials", func(t *testing.T) {
		t.Parallel()
		h := CORS([]string{"https://app.example"}, ok)
		w := do(h, http.MethodGet, "https://app.example")
		if w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" || w.Header().Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("headers = %v", w.Header())
		}
		pre := do(h, http.MethodOptions, "https://app.example")
		if pre.Code != http.StatusNoContent || pre.Header().Get("Access-Control-Allow-Methods") == "" {
			t.Fatalf("preflight = %d %v", pre.Code, pre.Header())
		}
	})
	t.Run("OtherOriginRefused", func(t *testing.T) {
		t.Parallel()
		w := do(CORS([]string{"https://app.example"}, ok), http.MethodGet, "https://evil.example")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("Allow-Origin = %q for an origin not listed", got)
		}
	})
	t.Run("WildcardWithoutCredentials", func(t *testing.T) {
		t.Parallel()
		w := do(CORS([]string{"*"}, ok), http.MethodGet, "https://any.example")
		if w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("headers = %v", w.Header())
		}
	})

	// jobstream issue 18 item 12: the preflight of a DELETE, and of the
	// headers a browser OpenAI SDK sends (openai-node with
	// dangerouslyAllowBrowser), were refused.
	t.Run("PreflightDELETEAndSDKHeaders", func(t *testing.T) {
		t.Parallel()
		h := CORS([]string{"https://app.example"}, ok)
		sdk := "authorization, content-type, openai-beta, x-stainless-arch, x-stainless-lang, x-stainless-os, " +
			"x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout"
		for _, tc := range []struct {
			method, headers, want string
		}{
			{"DELETE", "authorization", "Authorization"},
			{"POST", sdk, "Authorization, Content-Type, Openai-Beta, X-Stainless-Arch, X-Stainless-Lang, X-Stainless-Os, " +
				"X-Stainless-Package-Version, X-Stainless-Retry-Count, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Timeout"},
			{"GET", "X-Stainless-Helper-Method, OpenAI-Organization", "X-Stainless-Helper-Method, Openai-Organization"},
			// Not ours: left out, so the browser refuses the request.
			{"POST", "authorization, x-evil, x-stainless-\"bad\"", "Authorization"},
		} {
			r := httptest.NewRequest(http.MethodOptions, "/v1/responses/resp_1", nil)
			r.Header.Set("Origin", "https://app.example")
			r.Header.Set("Access-Control-Request-Method", tc.method)
			r.Header.Set("Access-Control-Request-Headers", tc.headers)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			methods := w.Header().Get("Access-Control-Allow-Methods")
			if w.Code != http.StatusNoContent || !strings.Contains(methods, tc.method) || w.Header().Get("Access-Control-Allow-Headers") != tc.want {
				t.Errorf("preflight of %s with %q: %d, methods %q, headers %q; want %s allowed with %q",
					tc.method, tc.headers, w.Code, methods, w.Header().Get("Access-Control-Allow-Headers"), tc.method, tc.want)
			}
			if vary := strings.Join(w.Header().Values("Vary"), ","); !strings.Contains(vary, "Access-Control-Request-Headers") {
				t.Errorf("preflight Vary %q: want Access-Control-Request-Headers", vary)
			}
		}
	})
}
