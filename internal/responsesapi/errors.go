package responsesapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
)

// Error is an error in OpenAI's shape:
// {"error":{"message":..,"type":..,"param":..,"code":..}}, param and code
// null when they do not apply.
type Error struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *Error) Error() string { return e.Message }

// invalid returns a 400 invalid_request_error naming the parameter at
// fault (param may be "" when none is).
func invalid(param, code, format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "invalid_request_error", param, code, format, args...)
}

func newError(status int, typ, param, code, format string, args ...any) *Error {
	e := &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return e
}

// unstorable is the 400 for a value PostgreSQL would refuse to store,
// naming its place in the request (the param, cut to a readable length).
func unstorable(ue *store.UnstorableError) *Error {
	field := truncate(ue.Field, 200)
	return invalid(field, "invalid_value", "Invalid '%s': %s.", field, truncate(ue.Problem, 200))
}

// checkStorable maps an *store.UnstorableError from a storability check
// to its 400; any other error (there is none today) passes through.
func checkStorable(err error) error {
	var ue *store.UnstorableError
	if errors.As(err, &ue) {
		return unstorable(ue)
	}
	return err
}

func notFound(id string) *Error {
	return newError(http.StatusNotFound, "invalid_request_error", "", "not_found", "No response found with id '%s'.", truncate(id, 80))
}

// WriteError writes err in OpenAI's error shape: an *Error as itself; an
// *httpapi.APIError from the shared toolkit (authentication, limits, body
// decoding, draining) with its status, code and Retry-After; a value
// PostgreSQL would refuse (*store.UnstorableError) as a 400 naming it, as
// the other surfaces answer; an unreachable database as a 503 with
// Retry-After; anything else as a 500 whose details go to log only.
// A request whose context has ended (httpapi.ClientGone) gets nothing, and
// its error is logged at Debug.
// The route table passes it to the toolkit's middleware.
func WriteError(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	if log == nil {
		log = slog.Default()
	}
	var (
		oe *Error
		ae *httpapi.APIError
		ue *store.UnstorableError
	)
	switch {
	case errors.As(err, &oe):
	case errors.As(err, &ae):
		typ := "invalid_request_error"
		code := ae.Code
		switch {
		case ae.Status == http.StatusUnauthorized:
			code = "invalid_api_key"
		case ae.Status == http.StatusTooManyRequests:
			typ, code = "requests", "rate_limit_exceeded"
		case ae.Status >= 500:
			typ = "server_error"
		}
		if ae.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		}
		oe = newError(ae.Status, typ, "", code, "%s", ae.Message)
	case errors.As(err, &ue):
		oe = unstorable(ue)
	case httpapi.ClientGone(r):
		// Nobody is left to answer, and it is not the server's fault.
		httpapi.LogClientGone(log, r, err)
		return
	case store.Unavailable(err) || errors.Is(err, context.DeadlineExceeded):
		log.Warn("request failed: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		oe = newError(http.StatusServiceUnavailable, "server_error", "", "unavailable", "The database is unavailable; retry shortly.")
	default:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		oe = newError(http.StatusInternalServerError, "server_error", "", "", "The server had an error while processing your request.")
	}
	writeJSON(w, oe.Status, map[string]*Error{"error": oe})
}

// RefuseLimit writes the 429 of the toolkit's request limits in OpenAI's
// shape (httpapi.Limit's refuse function).
func RefuseLimit(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	e := newError(http.StatusTooManyRequests, "requests", "", "rate_limit_exceeded",
		"Too many requests for this key; retry after %s.", wait.Round(time.Millisecond))
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// truncate cuts input quoted in an error message, on a rune boundary (a
// byte cut could leave invalid UTF-8 in the message).
func truncate(s string, n int) string { return httpapi.Truncate(s, n) }
