package semoss

import (
	"context"
	"net/http"

	"github.com/jobstream/jobstream/internal/httpapi"
)

// Short names for the internal/httpapi toolkit functions that the
// handlers call throughout.

func writeJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

func principalFrom(ctx context.Context) httpapi.Principal { return httpapi.PrincipalFrom(ctx) }

func truncate(s string, n int) string { return httpapi.Truncate(s, n) }

func retryable(err error) bool { return httpapi.Retryable(err) }
