package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Errors that mean the database is unreachable answer 503 with Retry-After
// on every route, not 500; other unexpected errors stay 500 without detail.
func TestWriteErrorUnavailable(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, tc := range map[string]struct {
		err    error
		status int
	}{
		"AdminShutdown":  {fmt.Errorf("submit job: %w", &pgconn.PgError{Code: "57P01"}), http.StatusServiceUnavailable},
		"ConnectionLost": {fmt.Errorf("list jobs: %w", io.ErrUnexpectedEOF), http.StatusServiceUnavailable},
		"QueryBug":       {fmt.Errorf("list jobs: %w", &pgconn.PgError{Code: "42703"}), http.StatusInternalServerError},
		"Other":          {errors.New("boom"), http.StatusInternalServerError},
	} {
		w := httptest.NewRecorder()
		WriteError(log, w, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil), tc.err)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", name, w.Code, tc.status, w.Body)
		}
		if tc.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", name)
		}
	}
}
