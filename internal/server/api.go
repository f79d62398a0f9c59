package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/jobstream/jobstream/internal/console"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/ledger"
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
	store     *store.Store
}

// NewAPI returns the HTTP API.
func NewAPI(d APIDeps) *API {
	a := &API{
		ready:   d.Ready,
		log:     d.Logger,
		metrics: d.Metrics,
		drain:   httpapi.NewDrain(),
		console: console.Handler(),
		store:   d.Store,
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

// logCheckpoint answers GET /log/checkpoint, unauthenticated: the latest
// signed checkpoint of the transparency log, as text (C2SP
// tlog-checkpoint), for witnesses and WORM copies. It holds no personal
// data. 404 until the first one is signed (serve --log-key).
func (a *API) logCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := a.store.LogLatestCheckpoint(r.Context())
	if err != nil {
		httpapi.WriteError(a.log, w, r, err)
		return
	}
	if cp == nil {
		httpapi.WriteError(a.log, w, r, httpapi.Errorf(http.StatusNotFound, "no_checkpoint", "no checkpoint has been signed yet (serve --log-key)"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write([]byte(cp.Note))
}

// logConsistency answers GET /log/consistency?old=N&new=M,
// unauthenticated: the proof that the tree of size new extends the tree of
// size old (RFC 6962), both at most the latest checkpoint's size.
func (a *API) logConsistency(w http.ResponseWriter, r *http.Request) {
	old, new, err := ledger.ParseConsistency(r)
	if err == nil {
		var p *ledger.ConsistencyProof
		if p, err = ledger.ProveConsistency(r.Context(), a.store, old, new); err == nil {
			httpapi.WriteJSON(w, http.StatusOK, p)
			return
		}
	}
	var bad *ledger.BadRequest
	if errors.As(err, &bad) {
		err = httpapi.Errorf(http.StatusBadRequest, "invalid_request", "%s", bad.Error())
	}
	httpapi.WriteError(a.log, w, r, err)
}
