// Package httpapi serves jobstream over HTTP with chi: the native /v1 API
// (JSON, long-poll, SSE), health and readiness, and (in semoss*.go) the
// SEMOSS-compatible /Monolith/api surface. Handlers are thin: reads go
// through stream.Reader, writes through store.Store.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// Defaults for Config.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxWait      = 25 * time.Second
	DefaultPageSize     = 1000
	DefaultMaxPageSize  = 10000
	DefaultSSEKeepAlive = 15 * time.Second
	// DefaultMaxPromptBytes is Config.MaxPromptBytes's default.
	DefaultMaxPromptBytes = 512 << 10
)

// Config holds the HTTP layer's limits.
type Config struct {
	// MaxBodyBytes caps request bodies (413 beyond). Defaults to 1 MiB.
	MaxBodyBytes int64
	// MaxWait caps long-poll waits; kept below common proxy idle
	// timeouts. Defaults to 25 s.
	MaxWait time.Duration
	// PageSize is the default number of chunks per read. Defaults to 1000.
	PageSize int
	// MaxPageSize caps limit=. Defaults to 10000.
	MaxPageSize int
	// SSEKeepAlive is the interval of SSE comment pings. Defaults to 15 s.
	SSEKeepAlive time.Duration
	// MaxPromptBytes caps a job's prompt: command, system prompt,
	// messages and the prompt params (full_prompt, messages) together
	// (413 beyond). Defaults to 512 KiB.
	MaxPromptBytes int
	// LogPrompts logs every submitted job's prompt at info level. Prompts
	// are user data, so it is off by default; secrets are never logged.
	LogPrompts bool
}

func (c Config) withDefaults() Config {
	c.MaxBodyBytes = cmpOr(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.MaxWait = cmpOr(c.MaxWait, DefaultMaxWait)
	c.PageSize = cmpOr(c.PageSize, DefaultPageSize)
	c.MaxPageSize = cmpOr(c.MaxPageSize, DefaultMaxPageSize)
	c.SSEKeepAlive = cmpOr(c.SSEKeepAlive, DefaultSSEKeepAlive)
	c.MaxPromptBytes = cmpOr(c.MaxPromptBytes, DefaultMaxPromptBytes)
	return c
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Deps are the server's dependencies.
type Deps struct {
	Store   *store.Store
	Reader  *stream.Reader
	Engines *engine.Registry
	Auth    Authenticator
	// Ready reports whether the process can serve (database reachable,
	// listener connected). Nil means always ready.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
	Config Config
	// Metrics, if set, is served at GET /metrics, outside authentication
	// (Prometheus scrapes it; it holds no job data).
	Metrics http.Handler
	// Limits are the per-principal request limits; nil disables them.
	Limits *Limits
}

// Server is the HTTP API.
type Server struct {
	store   *store.Store
	reader  *stream.Reader
	engines *engine.Registry
	auth    Authenticator
	ready   func(ctx context.Context) error
	log     *slog.Logger
	cfg     Config
	metrics http.Handler
	limits  *Limits
	router  chi.Router

	// drainCtx is cancelled by Drain (drain.go).
	drainCtx  context.Context
	drainOnce context.CancelFunc
}

// NewServer returns the API's http.Handler.
func NewServer(d Deps) *Server {
	s := &Server{
		store:   d.Store,
		reader:  d.Reader,
		engines: d.Engines,
		auth:    d.Auth,
		ready:   d.Ready,
		log:     d.Logger,
		cfg:     d.Config.withDefaults(),
		limits:  d.Limits,
		metrics: d.Metrics,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.drainCtx, s.drainOnce = context.WithCancel(context.Background())
	s.router = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	r.Use(s.recoverer)
	r.Use(securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(http.StatusNotFound, "not_found", "no route for %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", r.Method, r.URL.Path))
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	if s.metrics != nil {
		r.Method(http.MethodGet, "/metrics", s.metrics)
	}

	// Long-poll and SSE routes must not sit behind a timeout middleware
	// (chi's middleware.Timeout answers 504 at its deadline); waits are
	// capped by Config.MaxWait instead.
	r.Route("/v1", func(r chi.Router) {
		r.Use(s.authenticate)
		r.Use(s.limit)
		r.Post("/jobs", s.createJob)
		r.Get("/jobs", s.listJobs)
		r.Get("/jobs/{id}", s.getJob)
		r.Get("/jobs/{id}/chunks", s.getChunks)
		r.Get("/jobs/{id}/events", s.streamEvents)
		r.Post("/jobs/{id}/cancel", s.cancelJob)
		r.Get("/jobs/{id}/transcript", s.getTranscript)
		r.Get("/engines", s.listEngines)
	})
	// The SEMOSS-compatible surface (semoss*.go).
	r.Route("/Monolith/api", s.semossRoutes)
	return r
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "shutting down"})
		return
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
				s.writeError(w, r, errorf(http.StatusInternalServerError, "internal_error", "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// storeError maps store sentinels onto API errors.
func storeError(err error, id uuid.UUID) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "job_not_found", "job %s not found", id)
	}
	return err
}
