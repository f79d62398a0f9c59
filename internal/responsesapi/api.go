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
// come from the shared HTTP toolkit (internal/httpapi), mounted by the
// route table.
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

// Defaults for Config.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxPromptBytes = 512 << 10
	// DefaultPageSize is how many chunks one read statement returns. A
	// replay derives every event from chunk 0, so a page this size makes a
	// replay of 10,000 events one chunk read (issue 13: openai-python's
	// resume helper always replays from 0).
	DefaultPageSize  = 10_000
	DefaultKeepAlive = 15 * time.Second
	// DefaultCancelWait is how long a cancel waits for the model to stop
	// before answering with the Response as it is.
	DefaultCancelWait = 10 * time.Second
)

// Config holds the surface's limits.
type Config struct {
	// MaxBodyBytes caps request bodies (413 beyond). Defaults to 1 MiB.
	MaxBodyBytes int64
	// MaxPromptBytes caps instructions, input and tools together (413
	// beyond). Defaults to 512 KiB.
	MaxPromptBytes int
	// PageSize is the number of chunks per read statement. Defaults to
	// 10,000.
	PageSize int
	// KeepAlive is the interval of SSE comment pings, and of the waits
	// between them. Defaults to 15 s.
	KeepAlive time.Duration
	// CancelWait caps how long POST .../cancel waits for the job to stop.
	// Defaults to 10 s.
	CancelWait time.Duration
}

func (c Config) withDefaults() Config {
	c.MaxBodyBytes = or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.MaxPromptBytes = or(c.MaxPromptBytes, DefaultMaxPromptBytes)
	c.PageSize = or(c.PageSize, DefaultPageSize)
	c.KeepAlive = or(c.KeepAlive, DefaultKeepAlive)
	c.CancelWait = or(c.CancelWait, DefaultCancelWait)
	return c
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Deps are the surface's dependencies.
type Deps struct {
	Store   *store.Store
	Reader  *stream.Reader
	Engines *engine.Registry
	Logger  *slog.Logger
	Config  Config
	// Principal returns who a request acts for, as the authentication
	// middleware the route table mounts in front of Routes put it in the
	// request's context (httpapi.PrincipalFrom).
	Principal func(context.Context) httpapi.Principal
	// Read is Reader.Read made to stop waiting when the server drains
	// (the toolkit's drain); nil uses Reader.Read.
	Read func(context.Context, stream.Params) (store.Snapshot, error)
	// Draining reports whether the server is shutting down: streams then
	// end after the events they hold (clients resume with starting_after
	// on another node). Nil means never.
	Draining func() bool
}

// API serves /v1/responses.
type API struct {
	store     *store.Store
	reader    *stream.Reader
	engines   *engine.Registry
	log       *slog.Logger
	cfg       Config
	principal func(context.Context) httpapi.Principal
	read      func(context.Context, stream.Params) (store.Snapshot, error)
	draining  func() bool
}

// New returns the surface.
func New(d Deps) *API {
	a := &API{
		store: d.Store, reader: d.Reader, engines: d.Engines, log: d.Logger,
		cfg: d.Config.withDefaults(), principal: d.Principal, read: d.Read, draining: d.Draining,
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.read == nil {
		a.read = a.reader.Read
	}
	if a.draining == nil {
		a.draining = func() bool { return false }
	}
	return a
}

// Routes mounts the surface on r, the router of /v1/responses (behind the
// toolkit's authentication and limits, with WriteError and RefuseLimit as
// their error writers).
func (a *API) Routes(r chi.Router) {
	r.Post("/", a.create)
	r.Get("/{id}", a.get)
	r.Delete("/{id}", a.delete)
	r.Post("/{id}/cancel", a.cancel)
	r.Get("/{id}/input_items", a.inputItems)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, newError(http.StatusNotFound, "invalid_request_error", "", "not_found", "No route for %s %s.", r.Method, truncate(r.URL.Path, 200)))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, newError(http.StatusMethodNotAllowed, "invalid_request_error", "", "method_not_allowed", "%s is not allowed on %s.", r.Method, truncate(r.URL.Path, 200)))
	})
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(a.log, w, r, err)
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
	s := chi.URLParam(r, "id")
	hex, ok := strings.CutPrefix(s, idPrefix)
	if !ok || len(hex) != 32 {
		return uuid.Nil, s, notFound(s)
	}
	id, err := uuid.Parse(hex)
	if err != nil {
		return uuid.Nil, s, notFound(s)
	}
	return id, s, nil
}

// record returns the request's response, or a 404 in OpenAI's shape (for
// an unknown id, a deleted response, or another tenant's).
func (a *API) record(r *http.Request) (store.ResponseRecord, error) {
	id, s, err := parseID(r)
	if err != nil {
		return store.ResponseRecord{}, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	rec, err := a.store.GetResponse(ctx, a.principal(r.Context()).Tenant, id)
	if err == store.ErrNotFound {
		return rec, notFound(s)
	}
	return rec, err
}

// opTimeout bounds one database operation of a request.
const opTimeout = 10 * time.Second

func (a *API) deriver(rec store.ResponseRecord) (*respevent.Deriver, error) {
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
