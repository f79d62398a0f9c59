package jobsapi

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
)

// Short names for the internal/httpapi toolkit functions that the
// handlers call throughout.

func errorf(status int, code, format string, args ...any) *httpapi.APIError {
	return httpapi.Errorf(status, code, format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	return httpapi.DecodeJSON(w, r, limit, v)
}

func principalFrom(ctx context.Context) httpapi.Principal { return httpapi.PrincipalFrom(ctx) }

func parseJobID(r *http.Request) (uuid.UUID, error) { return httpapi.JobIDParam(r) }

func truncate(s string, n int) string { return httpapi.Truncate(s, n) }

func retryable(err error) bool { return httpapi.Retryable(err) }
