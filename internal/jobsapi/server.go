// Package jobsapi is jobstream's native API, /v1: jobs as JSON, their
// chunks by long-poll (GET /v1/jobs/{id}/chunks) and by Server-Sent Events
// (GET /v1/jobs/{id}/events), cancellation, transcripts, legal holds and the
// engine list. It holds only the handlers and their wire types; reads go through
// stream.Reader, writes through store.Store, and the shared HTTP pieces
// (errors, JSON, auth, limits, drain) come from internal/httpapi. The
// routes are in internal/server's routes.go.
//
// Submit is also how SEMOSS creates jobs, so both reject the same bad
// input the same way. The Responses surface (internal/responsesapi)
// validates its own requests and stores them with store.SubmitResponse.
package jobsapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// Server serves the native API's handlers.
type Server struct {
	store   *store.Store
	reader  *stream.Reader
	engines *engine.Registry
	auth    httpapi.Authenticator
	log     *slog.Logger
	cfg     httpapi.Config
	limits  *httpapi.Limits
	drain   *httpapi.Drain
	// expensive limits concurrent whole-job reads per key (LimitExpensive);
	// nil: no limit.
	expensive *httpapi.Limits
	// verdicts caches the verify verdicts of finished jobs.
	verdicts *verdictCache
}

// New returns the native API over d.
func New(d httpapi.Deps) *Server {
	s := &Server{
		store:    d.Store,
		reader:   d.Reader,
		engines:  d.Engines,
		auth:     d.Auth,
		log:      d.Logger,
		cfg:      d.Config.WithDefaults(),
		limits:   d.Limits,
		drain:    d.Drain,
		verdicts: newVerdictCache(verdictCacheSize),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if n := s.cfg.MaxExpensiveInFlight; n > 0 {
		s.expensive = &httpapi.Limits{MaxInFlight: n}
	}
	return s
}

// Authenticate is middleware authenticating /v1 requests, answering
// failures in the native error shape. With CSRF protection on, it refuses
// an unsafe request authenticated by the session cookie alone without the
// session's CSRF token (httpapi.ErrForbidden, 403): a browser sends the
// cookie (the web console's login) with forged cross-site requests too;
// Basic-auth requests (the CLI, SDKs) need no token.
func (s *Server) Authenticate(next http.Handler) http.Handler {
	return httpapi.Authenticate(s.auth, s.writeError)(next)
}

// ValidQuery is middleware answering a malformed query string with a 400
// naming the parameter (httpapi.ParseQuery), in the native error shape.
func (s *Server) ValidQuery(next http.Handler) http.Handler {
	return httpapi.ValidQuery(s.writeError)(next)
}

// Limit is middleware applying the per-key limits after Authenticate,
// answering 429 in the native error shape.
func (s *Server) Limit(next http.Handler) http.Handler {
	return httpapi.Limit(s.limits, func(w http.ResponseWriter, r *http.Request, wait time.Duration) {
		s.writeError(w, r, errorf(http.StatusTooManyRequests, "rate_limited", "too many requests for this key; retry after %s", wait.Round(time.Millisecond)))
	})(next)
}

// LimitExpensive is middleware, after Authenticate, bounding the
// concurrent requests of one key on the routes that read a whole job
// (verify, transcript, audit) to Config.MaxExpensiveInFlight: 429 with
// Retry-After beyond, in the native error shape. Apart from Limit's
// bound, which long-polls count against: a key may wait on many jobs at
// once, but not make the database read many whole jobs at once.
func (s *Server) LimitExpensive(next http.Handler) http.Handler {
	return httpapi.Limit(s.expensive, func(w http.ResponseWriter, r *http.Request, wait time.Duration) {
		s.writeError(w, r, errorf(http.StatusTooManyRequests, "rate_limited",
			"too many concurrent verify, transcript or audit requests for this key (at most %d); retry after %s",
			s.cfg.MaxExpensiveInFlight, wait.Round(time.Millisecond)))
	})(next)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(s.log, w, r, err)
}

// read is the stream reader's Read, ending a wait early when the server
// drains (httpapi.Drain.Read).
func (s *Server) read(ctx context.Context, p stream.Params) (store.Snapshot, error) {
	return s.drain.Read(ctx, s.reader, p)
}

// readError answers a failed read of job id: nothing when the client has
// gone, 404 for an unknown job (or another tenant's), 503 with Retry-After
// when the database is unreachable (it is restarting, say: the client
// should retry, from the same offset), else a 500.
func (s *Server) readError(w http.ResponseWriter, r *http.Request, err error, id uuid.UUID) {
	switch {
	case r.Context().Err() != nil:
		return
	case errors.Is(err, store.ErrNotFound):
		s.writeError(w, r, storeError(err, id))
	case retryable(err):
		s.log.Warn("read failed: database unavailable", "job", id, "err", err)
		w.Header().Set("Retry-After", "1")
		s.writeError(w, r, errorf(http.StatusServiceUnavailable, "unavailable", "the database is unavailable; retry from the same offset"))
	default:
		s.writeError(w, r, err)
	}
}

// storeError maps store sentinels onto API errors.
func storeError(err error, id uuid.UUID) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "job_not_found", "job %s not found", id)
	}
	return err
}
