package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// Drain starts a graceful shutdown of the API: waiting reads stop waiting
// and answer with what they have (a long-poll gets 200 with the chunks so
// far, possibly none, and the current status), SSE streams end after the
// events they hold (clients resume with Last-Event-ID on another node),
// synchronous waits for a job's end give up as if their deadline had come,
// and /readyz reports 503 so that load balancers move on. Call it before
// http.Server.Shutdown, which then finds the handlers returning promptly
// instead of having their connections cut. Safe to call more than once.
func (s *Server) Drain() {
	if s.drainOnce != nil {
		s.drainOnce()
	}
}

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.drainCtx != nil && s.drainCtx.Err() != nil }

// read is s.reader.Read for handlers: a waiting read (p.Wait > 0) ends
// early when the server drains, and then returns a fresh snapshot without
// waiting rather than an error.
func (s *Server) read(ctx context.Context, p stream.Params) (store.Snapshot, error) {
	if p.Wait <= 0 || s.drainCtx == nil {
		return s.reader.Read(ctx, p)
	}
	if s.Draining() {
		p.Wait, p.MinWait = 0, 0
		return s.reader.Read(ctx, p)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.drainCtx, cancel)
	defer stop()
	snap, err := s.reader.Read(wctx, p)
	if err != nil && ctx.Err() == nil && s.Draining() {
		p.Wait, p.MinWait = 0, 0
		return s.reader.Read(ctx, p)
	}
	return snap, err
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

// retryable reports whether a read failed because the database is
// unavailable or too slow, so that trying again later may work.
func retryable(err error) bool {
	return store.Unavailable(err) || errors.Is(err, context.DeadlineExceeded)
}
