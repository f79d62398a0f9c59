package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/jobstream/jobstream/internal/console"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/responsesapi"
	"github.com/jobstream/jobstream/internal/semoss"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// APIDeps are the HTTP API's dependencies.
type APIDeps struct {
	Store   *store.Store
	Reader  *stream.Reader
	Engines *engine.Registry
	Auth    httpapi.Authenticator
	// Ready reports whether the process can serve (database reachable,
	// listener connected). Nil means always ready.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
	Config httpapi.Config
	// Metrics, if set, is served at GET /metrics, outside authentication
	// (Prometheus scrapes it; it holds no job data).
	Metrics http.Handler
	// Limits are the per-principal request limits; nil disables them.
	Limits *httpapi.Limits
}

// API is the HTTP API: every wire surface (internal/jobsapi,
// internal/semoss, internal/responsesapi), health, readiness and metrics,
// routed by routes.go. The surfaces share one toolkit (internal/httpapi),
// one stream reader and one Drain.
type API struct {
	jobs      *jobsapi.Server
	semoss    *semoss.Server
	responses *responsesapi.Server
	ready     func(ctx context.Context) error
	log       *slog.Logger
	metrics   http.Handler
	drain     *httpapi.Drain
	console   http.Handler
	router    chi.Router
}

// NewAPI returns the HTTP API.
func NewAPI(d APIDeps) *API {
	a := &API{
		ready:   d.Ready,
		log:     d.Logger,
		metrics: d.Metrics,
		drain:   httpapi.NewDrain(),
		console: console.Handler(),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	deps := httpapi.Deps{
		Store:   d.Store,
		Reader:  d.Reader,
		Engines: d.Engines,
		Auth:    d.Auth,
		Logger:  a.log,
		Config:  d.Config.WithDefaults(),
		Limits:  d.Limits,
		Drain:   a.drain,
	}
	a.jobs = jobsapi.New(deps)
	a.semoss = semoss.New(deps, a.jobs)
	a.responses = responsesapi.New(deps)
	a.router = a.routes()
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

// Drain starts a graceful shutdown of the API (httpapi.Drain): waiting
// reads answer with what they have, SSE streams end cleanly, and /readyz
// reports 503. Call it before http.Server.Shutdown. Safe to call more
// than once.
func (a *API) Drain() { a.drain.Start() }

// Draining reports whether Drain was called.
func (a *API) Draining() bool { return a.drain.Draining() }

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if a.Draining() {
		httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "shutting down"})
		return
	}
	if a.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.ready(ctx); err != nil {
			httpapi.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
