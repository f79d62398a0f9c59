package httpapi

import (
	"context"
	"net/http"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// Drain is a graceful shutdown shared by every surface of a server: once
// Start is called, waiting reads stop waiting and answer with what they
// have (a long-poll gets 200 with the chunks so far, possibly none, and the
// current status), SSE streams end after the events they hold (clients
// resume with Last-Event-ID on another node), synchronous waits for a job's
// end give up as if their deadline had come, and /readyz reports 503 so
// that load balancers move on. Start it before http.Server.Shutdown, which
// then finds the handlers returning promptly instead of having their
// connections cut.
//
// A nil *Drain never drains.
type Drain struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// NewDrain returns a Drain that has not started.
func NewDrain() *Drain {
	ctx, cancel := context.WithCancel(context.Background())
	return &Drain{ctx: ctx, cancel: cancel}
}

// Start starts draining. Safe to call more than once.
func (d *Drain) Start() {
	if d != nil {
		d.cancel()
	}
}

// Draining reports whether Start was called.
func (d *Drain) Draining() bool { return d != nil && d.ctx.Err() != nil }

// Done is closed when draining starts (never, for a nil Drain), for
// handlers that wait in a select.
func (d *Drain) Done() <-chan struct{} {
	if d == nil {
		return nil
	}
	return d.ctx.Done()
}

// Read is rd.Read for handlers: a waiting read (p.Wait > 0) ends early when
// the server drains, and then returns a fresh snapshot without waiting
// rather than an error.
func (d *Drain) Read(ctx context.Context, rd *stream.Reader, p stream.Params) (store.Snapshot, error) {
	if p.Wait <= 0 || d == nil {
		return rd.Read(ctx, p)
	}
	if d.Draining() {
		p.Wait, p.MinWait = 0, 0
		return rd.Read(ctx, p)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(d.ctx, cancel)
	defer stop()
	snap, err := rd.Read(wctx, p)
	if err != nil && ctx.Err() == nil && d.Draining() {
		p.Wait, p.MinWait = 0, 0
		return rd.Read(ctx, p)
	}
	return snap, err
}

// ErrDraining is the answer to new work (a submission) while the server
// drains: 503 with Retry-After, so the client submits to another node.
func ErrDraining() *APIError {
	return &APIError{Status: http.StatusServiceUnavailable, Code: "draining",
		Message: "this node is shutting down; submit to another node", RetryAfter: 1}
}
