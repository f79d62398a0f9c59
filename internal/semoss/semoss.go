package semoss

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
)

// Waits of the SEMOSS surface.
const (
	// SemossDefaultWait is how long pixelJobStreaming and /engine/partial
	// wait for something new when the request names no wait. Long enough
	// that a client polling with nothing new gets one answer a second
	// instead of spinning, short enough that every answer is prompt: a
	// poll returns the moment a chunk is committed (LISTEN/NOTIFY), so
	// semoss-ui's 300-500 ms pollers still see each chunk at once, and
	// the wait only ever delays an answer that has nothing in it.
	SemossDefaultWait = time.Second
	// SemossSyncWait caps how long the synchronous runPixel, and
	// /engine/result, wait for a job to finish. The job keeps running
	// after that, and can still be read.
	SemossSyncWait = 10 * time.Minute
)

// Job statuses on the SEMOSS surface (PixelJobStatus in SEMOSS).
const (
	SemossSubmitted        = "Submitted"
	SemossInProgress       = "InProgress"
	SemossProgressComplete = "ProgressComplete"
	SemossComplete         = "Complete"
	SemossError            = "Error"
	SemossCanceled         = "Canceled"
	SemossUnknownJob       = "UnknownJob"
)

// semossError is an error answer of the SEMOSS surface.
type semossError struct {
	Status  int    `json:"-"`
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func (e *semossError) Error() string { return e.Message }

func semossErrorf(status int, typ, format string, args ...any) *semossError {
	return &semossError{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// writeSemossError writes err in SEMOSS's error shape. Errors of the native
// surface (from Submit) keep their status and code; anything else is a 500
// whose details go to the log, except that a request whose context has
// ended (httpapi.ClientGone) gets nothing and is logged at Debug.
func (s *Server) writeSemossError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		se *semossError
		ae *httpapi.APIError
	)
	switch {
	case errors.As(err, &se):
	case errors.As(err, &ae):
		se = &semossError{Status: ae.Status, Type: ae.Code, Message: ae.Message}
		if ae.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		}
	case httpapi.ClientGone(r):
		// Nobody is left to answer, and it is not the server's fault.
		httpapi.LogClientGone(s.log, r, err)
		return
	case retryable(err):
		// The database is restarting, say: the client should retry.
		s.log.Warn("request failed: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		se = &semossError{Status: http.StatusServiceUnavailable, Type: "Unavailable", Message: "the database is unavailable; retry"}
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		se = &semossError{Status: http.StatusInternalServerError, Type: "InternalError", Message: "internal error"}
	}
	// Never the whole input back, whatever a message quotes.
	out := *se
	out.Message = truncate(out.Message, 2*httpapi.MaxMessage)
	writeJSON(w, out.Status, &out)
}

// Authenticate authenticates /engine requests with the shared middleware
// (httpapi.Authenticate, which also refuses a cookie-authenticated request
// without its CSRF token), answering failures in SEMOSS's error shape.
func (s *Server) Authenticate(next http.Handler) http.Handler {
	return httpapi.Authenticate(s.auth, s.writeAuthError)(next)
}

// writeAuthError writes an authentication failure with SEMOSS's error
// types.
func (s *Server) writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *httpapi.APIError
	if errors.As(err, &ae) {
		switch ae.Code {
		case "unauthenticated":
			err = semossErrorf(ae.Status, "Unauthorized", "%s", ae.Message)
		case "csrf":
			err = semossErrorf(ae.Status, "CSRF", "%s", ae.Message)
		}
	}
	s.writeSemossError(w, r, err)
}

// ValidQuery is middleware answering a malformed query string with a 400
// naming the parameter (httpapi.ParseQuery), in SEMOSS's error shape.
func (s *Server) ValidQuery(next http.Handler) http.Handler {
	return httpapi.ValidQuery(s.writeSemossError)(next)
}

// Limit applies the per-key limits (httpapi.Limits) like the native API,
// answering 429 with Retry-After in SEMOSS's error shape.
func (s *Server) Limit(next http.Handler) http.Handler {
	return httpapi.Limit(s.limits, func(w http.ResponseWriter, r *http.Request, wait time.Duration) {
		s.writeSemossError(w, r, semossErrorf(http.StatusTooManyRequests, "TooManyRequests", "too many requests for this key; retry after %s", wait.Round(time.Millisecond)))
	})(next)
}

// LoginLimit is Limit for the routes outside authentication (/config,
// /auth/login, /logout): a request with good credentials counts against
// its key, any other against its client address.
func (s *Server) LoginLimit(next http.Handler) http.Handler {
	limited := s.Limit(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.limits == nil {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.auth.Authenticate(r)
		if err != nil {
			p = httpapi.Principal{}
		}
		limited.ServeHTTP(w, r.WithContext(httpapi.WithPrincipal(r.Context(), p)))
	})
}

// semossForm reads a request's fields: form-encoded (what SEMOSS clients
// send), multipart, or a JSON object whose string values are taken as they
// are and other values as JSON text. Query parameters count too; body
// fields win.
func (s *Server) semossForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch {
	case httpapi.IsJSON(ct):
		var m map[string]json.RawMessage
		if err = json.NewDecoder(r.Body).Decode(&m); err == nil {
			v := url.Values{}
			for k, raw := range m {
				var str string
				switch {
				case json.Unmarshal(raw, &str) == nil:
					v.Set(k, str)
				case string(raw) != "null":
					v.Set(k, string(raw))
				}
			}
			for k, vs := range r.URL.Query() {
				if !v.Has(k) {
					v[k] = vs
				}
			}
			return v, nil
		}
	case ct == "multipart/form-data":
		if err = r.ParseMultipartForm(s.cfg.MaxBodyBytes); err == nil {
			return r.Form, nil
		}
	default:
		if err = r.ParseForm(); err == nil {
			return r.Form, nil
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, semossErrorf(http.StatusRequestEntityTooLarge, "BodyTooLarge", "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
	}
	return nil, semossErrorf(http.StatusBadRequest, "InvalidRequest", "cannot read the request body (%s): %s", cmp.Or(ct, "no Content-Type"), truncate(err.Error(), httpapi.MaxMessage))
}

// formJobID reads the jobId field; ok is false when it is missing or not a
// job id (which SEMOSS clients are told as UnknownJob).
func formJobID(f url.Values) (uuid.UUID, bool) {
	id, err := httpapi.ParseJobID(strings.TrimSpace(f.Get("jobId")))
	return id, err == nil
}

// semossStatusName maps a job status onto SEMOSS's: a finished job of the
// synchronous runPixel is "Complete", of runPixelAsync "ProgressComplete".
func semossStatusName(status string, sync bool) string {
	switch status {
	case store.StatusQueued:
		return SemossSubmitted
	case store.StatusRunning:
		return SemossInProgress
	case store.StatusCompleted:
		if sync {
			return SemossComplete
		}
		return SemossProgressComplete
	case store.StatusFailed:
		return SemossError
	case store.StatusCancelled:
		return SemossCanceled
	}
	return SemossUnknownJob
}

// semossStatusOf is the SEMOSS status of a job read with status, where more
// says that chunks were left for a later read: a client told a finished
// status stops reading, so until it has every chunk the job reads as
// InProgress.
func (s *Server) semossStatusOf(ctx context.Context, tenant string, id uuid.UUID, status string, more bool) string {
	if more {
		return SemossInProgress
	}
	return semossStatusName(status, s.isSync(ctx, tenant, id, status))
}

// isSync reports whether a job in status was submitted by a synchronous
// runPixel; it only matters (and is only looked up) once it completed.
func (s *Server) isSync(ctx context.Context, tenant string, id uuid.UUID, status string) bool {
	if status != store.StatusCompleted {
		return false
	}
	pj, err := s.store.PixelJobGet(ctx, tenant, id)
	return err == nil && pj.Sync
}

// sessionOf is the request's SEMOSS session, or an error telling the
// client how to get one.
func sessionOf(p httpapi.Principal) (uuid.UUID, error) {
	id, err := uuid.Parse(p.SessionID)
	if err != nil {
		return uuid.Nil, semossErrorf(http.StatusBadRequest, "NoSession",
			"this call keeps a read position per session and the request has none: send the JSESSIONID cookie that GET /Monolith/api/config sets (or, on pixelJobStreaming, pass offset)")
	}
	return id, nil
}
