// Package httpapi is the small HTTP toolkit that jobstream's wire surfaces
// share, so that every surface fails, authenticates, limits and shuts down
// the same way:
//
//   - errors: APIError, Errorf, WriteError (the native error shape, with
//     503 + Retry-After for an unreachable database), Retryable;
//   - JSON: DecodeJSON (strict, size-capped), WriteJSON;
//   - auth: Authenticator, Principal, WithPrincipal/PrincipalFrom, the
//     Authenticate middleware, SessionAuthenticator (SEMOSS sessions);
//   - limits: Limits and the Limit middleware (429 + Retry-After);
//   - CORS, SecurityHeaders, Recoverer;
//   - Drain: the graceful shutdown every waiting handler honours;
//   - params: JobIDParam, ParseJobID, ParseOffset, ParseWait, ParseLimit;
//   - Config and Deps: the limits and dependencies every surface is built
//     from.
//
// The surfaces are packages of their own, each holding only its handlers
// and wire types: internal/jobsapi (native /v1), internal/semoss
// (/Monolith/api), internal/responsesapi (OpenAI Responses,
// /v1/responses). internal/server composes them, and its routes.go is the
// one route table. A surface's package exports its handlers and its
// middleware (auth and limits answering in its own error shape) for that
// table.
package httpapi

import (
	"cmp"
	"log/slog"
	"net/http"
	"time"

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
	// DefaultMaxExpensiveInFlight is Config.MaxExpensiveInFlight's
	// default: a client verifying or exporting a few jobs at once is
	// served; one looping on them cannot take the database from others.
	DefaultMaxExpensiveInFlight = 4
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
	// MaxExpensiveInFlight caps the concurrent requests of one key (else
	// tenant, else client address) on the routes that read a whole job:
	// verify, transcript, audit (429 with Retry-After beyond). A verify
	// of a 100,000-chunk job reads them all (0.46 s, ~20 MB); 40 such
	// loops from one key made every other tenant's requests 250 times
	// slower. Defaults to 4; negative: no limit.
	MaxExpensiveInFlight int
}

// WithDefaults returns c with every unset limit at its default.
func (c Config) WithDefaults() Config {
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.MaxWait = cmp.Or(c.MaxWait, DefaultMaxWait)
	c.PageSize = cmp.Or(c.PageSize, DefaultPageSize)
	c.MaxPageSize = cmp.Or(c.MaxPageSize, DefaultMaxPageSize)
	c.SSEKeepAlive = cmp.Or(c.SSEKeepAlive, DefaultSSEKeepAlive)
	c.MaxPromptBytes = cmp.Or(c.MaxPromptBytes, DefaultMaxPromptBytes)
	c.MaxExpensiveInFlight = cmp.Or(c.MaxExpensiveInFlight, DefaultMaxExpensiveInFlight)
	return c
}

// Deps are what every wire surface is built from (jobsapi.New,
// semoss.New, responsesapi.New): internal/server fills them in once and hands the same
// values to each surface.
type Deps struct {
	Store   *store.Store
	Reader  *stream.Reader
	Engines *engine.Registry
	Auth    Authenticator
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Config is used with its defaults applied (WithDefaults).
	Config Config
	// Limits are the per-principal request limits; nil disables them.
	Limits *Limits
	// Drain is the server's graceful shutdown; nil never drains.
	Drain *Drain
}

// Recoverer is middleware that answers a panicking handler with a 500 in
// the native error shape, logging the panic, and lets
// http.ErrAbortHandler through.
func Recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
					WriteError(log, w, r, Errorf(http.StatusInternalServerError, "internal_error", "internal error"))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// SecurityHeaders is middleware setting the headers every answer carries:
// no MIME sniffing, no framing, no referrer, no caching.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
