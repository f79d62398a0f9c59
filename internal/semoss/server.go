// Package semoss is jobstream's SEMOSS-compatible surface, mounted at
// /Monolith/api, so that SEMOSS clients (semoss-ui, the Python SDK) run
// their LLM pixels as durable jobs. Requests are form-encoded (or JSON
// objects, or multipart); answers are SEMOSS's JSON shapes; errors are
// {"errorMessage":..,"errorType":..}.
//
// Files: semoss.go (request decoding, errors, auth, statuses), session.go
// (config, login, sessions, CSRF), pixel.go (runPixel, runPixelAsync,
// result), stream.go (pixelJobStreaming, partial, status, console, error,
// terminate). An LLM pixel is a native job, submitted through
// jobsapi.Server.Submit with the same checks; reads go through
// stream.Reader. The routes are in internal/server's routes.go.
package semoss

import (
	"context"
	"log/slog"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// Server serves the SEMOSS surface's handlers.
type Server struct {
	store  *store.Store
	reader *stream.Reader
	auth   httpapi.Authenticator
	log    *slog.Logger
	cfg    httpapi.Config
	limits *httpapi.Limits
	drain  *httpapi.Drain
	// jobs submits LLM pixels as native jobs.
	jobs *jobsapi.Server
	// pages tracks the answers of cursor-mode pages (cursor.go).
	pages pages
}

// New returns the SEMOSS surface over d, submitting jobs through jobs.
func New(d httpapi.Deps, jobs *jobsapi.Server) *Server {
	s := &Server{
		store:  d.Store,
		reader: d.Reader,
		auth:   d.Auth,
		log:    d.Logger,
		cfg:    d.Config.WithDefaults(),
		limits: d.Limits,
		drain:  d.Drain,
		jobs:   jobs,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// read is the stream reader's Read, ending a wait early when the server
// drains (httpapi.Drain.Read).
func (s *Server) read(ctx context.Context, p stream.Params) (store.Snapshot, error) {
	return s.drain.Read(ctx, s.reader, p)
}
