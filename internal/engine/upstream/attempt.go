package upstream

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
)

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 64 << 10

// Attempt is one try of an upstream call. Its methods are called from the
// goroutine running the call, except the idle timer's, which only cancels.
type Attempt struct {
	n       int
	idle    time.Duration
	timer   *time.Timer
	emitted bool
	cause   error

	// The error response, captured by Middleware before the SDK sees it, so
	// that classification does not depend on how each SDK parses bodies.
	status    int
	header    http.Header
	body      []byte
	notStream bool // a 2xx JSON response, body captured
}

// N is the attempt's number, 1 for the first.
func (a *Attempt) N() int { return a.n }

// Emitted reports whether the attempt has emitted a chunk.
func (a *Attempt) Emitted() bool { return a.emitted }

func (a *Attempt) run(ctx context.Context, timeout time.Duration, fn func(context.Context, *Attempt) error) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if timeout > 0 {
		var cancelTimeout context.CancelFunc
		actx, cancelTimeout = context.WithTimeoutCause(actx, timeout, errRequestTimeout)
		defer cancelTimeout()
	}
	if a.idle > 0 {
		a.timer = time.AfterFunc(a.idle, func() { cancel(errIdle) })
		defer a.timer.Stop()
	}
	err := fn(actx, a)
	if err != nil {
		a.cause = context.Cause(actx)
	}
	return err
}

// touch restarts the idle timer: the upstream has just sent something.
func (a *Attempt) touch() {
	if a.timer != nil {
		a.timer.Reset(a.idle)
	}
}

// Middleware is an SDK middleware (option.WithMiddleware in both the OpenAI
// and the Anthropic SDK) that watches the response: it captures error
// responses and restarts the idle timer on every byte received.
func (a *Attempt) Middleware(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	resp, err := next(req)
	if err != nil || resp == nil {
		return resp, err
	}
	a.touch()
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		a.status, a.header, a.body = resp.StatusCode, resp.Header.Clone(), body
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	// A JSON body where an event stream was asked for is a proxy's error,
	// or a server that ignored "stream": either way there is nothing to
	// stream.
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		a.notStream, a.body = true, body
		resp.Body = io.NopCloser(bytes.NewReader(nil))
		return resp, nil
	}
	resp.Body = &idleBody{ReadCloser: resp.Body, a: a}
	return resp, nil
}

type idleBody struct {
	io.ReadCloser
	a *Attempt
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.a.touch()
	}
	return n, err
}

// Emit passes c to emit and marks the attempt as having output, which rules
// out retrying it. An error from emit is returned by Caller.Do unchanged.
func (a *Attempt) Emit(emit engine.Emit, c engine.Chunk) error {
	a.emitted = true
	if err := emit(c); err != nil {
		return &emitError{err: err}
	}
	return nil
}

// emitError marks an error returned by the worker's emit callback, which Do
// passes through rather than classifying as an upstream failure.
type emitError struct{ err error }

func (e *emitError) Error() string { return e.err.Error() }
func (e *emitError) Unwrap() error { return e.err }
