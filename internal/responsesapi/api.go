// Package responsesapi serves the OpenAI Responses API (/v1/responses)
// over jobstream's durable jobs, so that an application using an official
// OpenAI SDK changes only its base URL:
//
//	POST   /v1/responses                    create (background, stream, or wait)
//	GET    /v1/responses/{id}               the Response object
//	GET    /v1/responses/{id}?stream=true   its events, replayed then followed
//	POST   /v1/responses/{id}/cancel        stop the model; idempotent
//	DELETE /v1/responses/{id}               hide it (chunks stay until retention)
//	GET    /v1/responses/{id}/input_items   the input items
//
// A response is a job: model is a jobstream engine id, the request becomes
// the job's messages and params, and the job's stored chunks are the only
// record of its output. Events and Response objects are derived from the
// chunks by internal/respevent, so resuming a stream (starting_after=N)
// works for every response, at any age, on any node, and two readers see
// the same bytes for the same sequence number. The package holds only the
// handlers and wire types; authentication, request limits and draining
// come from the shared HTTP toolkit (internal/httpapi), and the routes are
// in internal/server's routes.go.
package responsesapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/respevent"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// Limits of the surface beyond httpapi.Config's.
const (
	// cancelWait is how long a cancel waits for the model to stop before
	// answering with the Response as it is.
	cancelWait = 10 * time.Second
	// opTimeout bounds one database operation of a request.
	opTimeout = 10 * time.Second
)

// Server serves /v1/responses. Its handlers and middleware are mounted by
// the route table (internal/server's routes.go).
type Server struct {
	store   *store.Store
	reader  *stream.Reader
	engines *engine.Registry
	auth    httpapi.Authenticator
	log     *slog.Logger
	cfg     httpapi.Config
	limits  *httpapi.Limits
	drain   *httpapi.Drain
	// pageSize is the number of chunks per read statement: the toolkit's
	// MaxPageSize (10,000 by default). A replay derives every event from
	// chunk 0, so a replay of 10,000 events is one chunk read (issue 13:
	// openai-python's resume helper always replays from 0).
	pageSize int
}

// New returns the surface over d.
func New(d httpapi.Deps) *Server {
	s := &Server{
		store: d.Store, reader: d.Reader, engines: d.Engines, auth: d.Auth,
		log: d.Logger, cfg: d.Config.WithDefaults(), limits: d.Limits, drain: d.Drain,
	}
	s.pageSize = s.cfg.MaxPageSize
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Authenticate is middleware authenticating /v1/responses requests (Basic,
// or the bearer token "access:secret" an OpenAI SDK sends), answering
// failures in OpenAI's error shape.
func (s *Server) Authenticate(next http.Handler) http.Handler {
	return httpapi.Authenticate(s.auth, s.writeError)(next)
}

// ValidQuery is middleware answering a malformed query string with a 400
// naming the parameter (httpapi.ParseQuery), in OpenAI's error shape.
func (s *Server) ValidQuery(next http.Handler) http.Handler {
	return httpapi.ValidQuery(s.writeError)(next)
}

// Limit is middleware applying the per-key limits after Authenticate,
// answering 429 in OpenAI's error shape.
func (s *Server) Limit(next http.Handler) http.Handler {
	return httpapi.Limit(s.limits, RefuseLimit)(next)
}

// NotFound answers an unknown route under /v1/responses.
func (s *Server) NotFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, newError(http.StatusNotFound, "invalid_request_error", "", "not_found", "No route for %s %s.", r.Method, truncate(r.URL.Path, 200)))
}

// MethodNotAllowed answers a known route with the wrong method.
func (s *Server) MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, newError(http.StatusMethodNotAllowed, "invalid_request_error", "", "method_not_allowed", "%s is not allowed on %s.", r.Method, truncate(r.URL.Path, 200)))
}

func (s *Server) principal(ctx context.Context) httpapi.Principal { return httpapi.PrincipalFrom(ctx) }

// read is the stream reader's Read, ending a wait early when the server
// drains.
func (s *Server) read(ctx context.Context, p stream.Params) (store.Snapshot, error) {
	return s.drain.Read(ctx, s.reader, p)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(s.log, w, r, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// A response id is "resp_" and the job id's 32 hex digits.
const idPrefix = "resp_"

func responseID(job uuid.UUID) string {
	return idPrefix + strings.ReplaceAll(job.String(), "-", "")
}

// parseID reads the {id} of a route; an id that is not one of ours is a
// response that does not exist.
func parseID(r *http.Request) (uuid.UUID, string, error) {
	raw := chi.URLParam(r, "id")
	hex, ok := strings.CutPrefix(raw, idPrefix)
	if !ok || len(hex) != 32 {
		return uuid.Nil, raw, notFound(raw)
	}
	id, err := uuid.Parse(hex)
	if err != nil {
		return uuid.Nil, raw, notFound(raw)
	}
	return id, raw, nil
}

// record returns the request's response, or a 404 in OpenAI's shape (for
// an unknown id, a deleted response, or another tenant's).
func (s *Server) record(r *http.Request) (store.ResponseRecord, error) {
	id, raw, err := parseID(r)
	if err != nil {
		return store.ResponseRecord{}, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	rec, err := s.store.GetResponse(ctx, s.principal(r.Context()).Tenant, id)
	if err == store.ErrNotFound {
		return rec, notFound(raw)
	}
	return rec, err
}

func (s *Server) deriver(rec store.ResponseRecord) (*respevent.Deriver, error) {
	var meta respevent.Meta
	if err := json.Unmarshal(rec.Meta, &meta); err != nil {
		return nil, err
	}
	return respevent.New(responseID(rec.JobID), rec.CreatedAt.Unix(), meta), nil
}

// liveStatus is the Response status of an unfinished job.
func liveStatus(jobStatus string) string {
	if jobStatus == store.StatusQueued {
		return respevent.StatusQueued
	}
	return respevent.StatusInProgress
}
