package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

type refuseAuth struct{}

func (refuseAuth) Authenticate(*http.Request) (Principal, error) {
	return Principal{}, ErrUnauthenticated
}

// TestChallengeNotForScripts: a 401 asks for Basic credentials, except on
// requests a page's script made (Sec-Fetch-Mode other than navigate),
// where a browser would answer with a login dialog over the web console.
func TestChallengeNotForScripts(t *testing.T) {
	t.Parallel()
	h := Authenticate(refuseAuth{}, func(w http.ResponseWriter, r *http.Request, err error) {
		WriteError(slog.New(slog.NewTextHandler(io.Discard, nil)), w, r, err)
	})(http.NotFoundHandler())
	for _, tc := range []struct {
		mode      string
		challenge bool
	}{
		{"", true},
		{"navigate", true},
		{"cors", false},
		{"same-origin", false},
		{"no-cors", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/jobs", nil)
		if tc.mode != "" {
			r.Header.Set("Sec-Fetch-Mode", tc.mode)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("Sec-Fetch-Mode %q: %d, want 401", tc.mode, w.Code)
		}
		if got := w.Header().Get("WWW-Authenticate") != ""; got != tc.challenge {
			t.Errorf("Sec-Fetch-Mode %q: challenge %v, want %v", tc.mode, got, tc.challenge)
		}
	}
}
