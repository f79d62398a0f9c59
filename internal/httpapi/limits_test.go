package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestLimits(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("RateLimitPerKey", func(t *testing.T) {
		t.Parallel()
		l := &Limits{RatePerSecond: 10, Burst: 3}
		for i := 0; i < 3; i++ {
			release, _, ok := l.acquire("a", now)
			if !ok {
				t.Fatalf("request %d within the burst was refused", i)
			}
			release()
		}
		_, wait, ok := l.acquire("a", now)
		if ok || wait <= 0 || wait > 100*time.Millisecond {
			t.Fatalf("4th request: ok=%v wait=%s, want refused with a wait of ~100ms", ok, wait)
		}
		if _, _, ok := l.acquire("b", now); !ok {
			t.Fatal("another key must have its own bucket")
		}
		if _, _, ok := l.acquire("a", now.Add(100*time.Millisecond)); !ok {
			t.Fatal("a token must be back after 1/rate")
		}
	})

	t.Run("MaxInFlight", func(t *testing.T) {
		t.Parallel()
		l := &Limits{MaxInFlight: 2}
		r1, _, ok1 := l.acquire("a", now)
		_, _, ok2 := l.acquire("a", now)
		if !ok1 || !ok2 {
			t.Fatal("two concurrent requests must be admitted")
		}
		if _, _, ok := l.acquire("a", now); ok {
			t.Fatal("a third concurrent request must be refused")
		}
		r1()
		if _, _, ok := l.acquire("a", now); !ok {
			t.Fatal("a slot freed by release must be reusable")
		}
	})

	t.Run("Answers429WithRetryAfter", func(t *testing.T) {
		t.Parallel()
		refuse := func(w http.ResponseWriter, r *http.Request, wait time.Duration) {
			w.WriteHeader(http.StatusTooManyRequests)
		}
		h := Limit(&Limits{RatePerSecond: 1, Burst: 1}, refuse)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		id := uuid.New()
		do := func() *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodGet, "/v1/jobs", nil)
			r = r.WithContext(WithPrincipal(r.Context(), Principal{Tenant: "t", KeyID: &id}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		if w := do(); w.Code != http.StatusNoContent {
			t.Fatalf("first request: %d", w.Code)
		}
		w := do()
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("second request: %d Retry-After=%q, want 429 with Retry-After 1", w.Code, w.Header().Get("Retry-After"))
		}
	})
}
