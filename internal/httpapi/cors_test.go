package httpapi

import (
	"net/http"
	"net/http/httptest"
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
}
