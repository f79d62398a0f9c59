package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/jobstream/jobstream/internal/console"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/openapi"
)

// routes is the route table of every wire surface. Each surface mounts
// under its own prefix, behind its own ValidQuery, Authenticate and Limit
// middleware, which answer in that surface's error shape; a new surface
// adds a block here the same way.
//
// Long-poll and SSE routes must not sit behind a timeout middleware (chi's
// middleware.Timeout answers 504 at its deadline); waits are capped by
// httpapi.Config.MaxWait instead.
func (a *API) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	r.Use(httpapi.Recoverer(a.log))
	r.Use(httpapi.SecurityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(a.log, w, r, httpapi.Errorf(http.StatusNotFound, "not_found", "no route for %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(a.log, w, r, httpapi.Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", r.Method, r.URL.Path))
	})

	// Unauthenticated: load balancers and Prometheus.
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	if a.metrics != nil {
		r.Method(http.MethodGet, "/metrics", a.metrics)
	}
	// Unauthenticated: the transparency log's checkpoint and consistency
	// proofs hold no personal data (internal/ledger).
	r.Get("/log/checkpoint", a.logCheckpoint)
	r.Get("/log/consistency", a.logConsistency)
	// Unauthenticated: the OpenAPI document of this table
	// (internal/openapi); TestRoutesDocumented keeps the two in step.
	r.Get("/openapi.json", openapi.Handler)

	// The native API (internal/jobsapi). Another surface under /v1 (the
	// OpenAI Responses API at /v1/responses, say) mounts with a Route of
	// its own: chi routes it past this one, behind its own middleware.
	r.Route("/v1", func(r chi.Router) {
		jobs := a.jobs
		r.Use(jobs.ValidQuery, jobs.Authenticate, jobs.Limit)
		r.Post("/jobs", jobs.CreateJob)
		r.Get("/jobs", jobs.ListJobs)
		r.Get("/jobs/{id}", jobs.GetJob)
		r.Get("/jobs/{id}/chunks", jobs.GetChunks)
		r.Get("/jobs/{id}/events", jobs.StreamEvents)
		r.Post("/jobs/{id}/cancel", jobs.CancelJob)
		// Routes that read a whole job: a few at a time per key.
		r.With(jobs.LimitExpensive).Get("/jobs/{id}/transcript", jobs.GetTranscript)
		r.With(jobs.LimitExpensive).Get("/jobs/{id}/verify", jobs.VerifyJob)
		r.With(jobs.LimitExpensive).Get("/jobs/{id}/audit", jobs.GetAudit)
		r.Get("/jobs/{id}/proof", jobs.JobProof)
		r.Post("/jobs/{id}/hold", jobs.HoldJob)
		r.Delete("/jobs/{id}/hold", jobs.UnholdJob)
		r.Get("/engines", jobs.ListEngines)
	})

	// The OpenAI Responses API (internal/responsesapi), in OpenAI's error
	// shape.
	r.Route("/v1/responses", func(r chi.Router) {
		resp := a.responses
		r.Use(resp.ValidQuery, resp.Authenticate, resp.Limit)
		r.NotFound(resp.NotFound)
		r.MethodNotAllowed(resp.MethodNotAllowed)
		r.Post("/", resp.Create)
		r.Get("/{id}", resp.Get)
		r.Delete("/{id}", resp.Delete)
		r.Post("/{id}/cancel", resp.Cancel)
		r.Get("/{id}/input_items", resp.InputItems)
	})

	// The SEMOSS-compatible surface (internal/semoss).
	r.Route("/Monolith/api", func(r chi.Router) {
		sem := a.semoss
		r.Use(sem.ValidQuery)
		// Logins and logouts authenticate themselves (wrong credentials
		// read as logged out); they are rate-limited all the same, since
		// each login may start a session.
		r.Group(func(r chi.Router) {
			r.Use(sem.LoginLimit)
			r.Get("/config", sem.Config)
			r.Get("/config/fetchCsrf", sem.FetchCSRF)
			r.Post("/auth/login", sem.Login)
			r.Get("/logout/all", sem.Logout)
			r.Post("/logout/all", sem.Logout)
		})
		r.Group(func(r chi.Router) {
			r.Use(sem.Authenticate, sem.Limit)
			r.Post("/engine/runPixel", sem.RunPixel)
			r.Post("/engine/runPixelAsync", sem.RunPixelAsync)
			r.Post("/engine/result", sem.Result)
			r.Post("/engine/pixelJobStreaming", sem.PixelJobStreaming)
			r.Post("/engine/partial", sem.Partial)
			r.Post("/engine/status", sem.Status)
			r.Post("/engine/console", sem.Console)
			r.Post("/engine/error", sem.ErrorLines)
			r.Post("/engine/terminate", sem.Terminate)
		})
	})

	// The web console (internal/console): its page at / and its assets,
	// GET and HEAD (which answers as GET does, without the body: chi
	// would refuse a HEAD on a GET route with 405).
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		r.Method(m, "/", a.console)
		r.Method(m, console.AssetPrefix+"*", a.console)
	}
	return r
}
