package httpapi

import (
	"context"
	"errors"
	"net/http"
)

// Revoker is implemented by Authenticators whose keys can be revoked while
// requests of theirs run (internal/auth): Guard returns a context of ctx
// that ends, with a cause wrapping ErrUnauthenticated, once p's key is
// revoked. Call the CancelFunc when the request ends.
type Revoker interface {
	Guard(ctx context.Context, p Principal) (context.Context, context.CancelFunc)
}

// serveAs serves r as p: with p in its context and, when auth is a
// Revoker, under a context that ends when p's key is revoked, so that a
// revoked key's SSE streams, long-polls and waits end with it. A request
// ended so before it wrote anything is answered by refuse (a 401 in the
// surface's error shape); one that had begun (an SSE stream) just ends.
func serveAs(auth Authenticator, p Principal, next http.Handler, w http.ResponseWriter, r *http.Request, refuse func(w http.ResponseWriter, r *http.Request, err error)) {
	ctx := WithPrincipal(r.Context(), p)
	rv, ok := auth.(Revoker)
	if !ok || p.KeyID == nil {
		next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	gctx, end := rv.Guard(ctx, p)
	defer end()
	tw := &writeTracker{ResponseWriter: w}
	next.ServeHTTP(tw, r.WithContext(gctx))
	if cause := context.Cause(gctx); !tw.wrote && r.Context().Err() == nil && errors.Is(cause, ErrUnauthenticated) {
		Challenge(w, r)
		refuse(w, r, cause)
	}
}

// writeTracker records whether a handler wrote anything.
type writeTracker struct {
	http.ResponseWriter
	wrote bool
}

func (w *writeTracker) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *writeTracker) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, write
// deadlines).
func (w *writeTracker) Unwrap() http.ResponseWriter { return w.ResponseWriter }
