package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/jobstream/jobstream/internal/store"
)

// APIError is the toolkit's error: a status, a machine-readable code and a
// message for the client. WriteError writes it in the native API's shape,
// {"error":{"code":"invalid_offset","message":"offset must be ..."}}; a
// surface with a contract of its own (SEMOSS, OpenAI) maps it onto that,
// so that errors from shared code (Submit, the param parsers, DecodeJSON)
// keep their status and wording everywhere.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

func (e *APIError) Error() string { return e.Message }

// Errorf returns an *APIError with a formatted message.
func Errorf(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WriteJSON writes v as JSON with status, without HTML escaping.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteError writes err in the native error shape: an *APIError as
// itself, an unreachable database as a 503 with Retry-After, anything else
// as a 500 whose details go to log, not the client. A request whose
// context has ended (ClientGone) gets nothing, and its error is logged at
// Debug only.
func WriteError(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		if ae.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		}
	case ClientGone(r):
		LogClientGone(log, r, err)
		return
	case Retryable(err):
		// The database is restarting or unreachable: not the client's
		// fault, and worth retrying.
		log.Warn("request failed: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		ae = &APIError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the database is unavailable; retry shortly"}
	default:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = &APIError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error"}
	}
	// Never the whole input back, whatever a message quotes.
	out := *ae
	out.Message = Truncate(out.Message, 2*MaxMessage)
	WriteJSON(w, out.Status, map[string]*APIError{"error": &out})
}

// ClientGone reports whether r's context has ended, so that whatever
// failed in r failed for that: the client closed the connection (a
// browser tab closed mid-request, a reader that stopped waiting), the
// request's key was revoked (Authenticate then answers 401 itself), or the
// server cut the request at shutdown. It is no fault of the server's, and
// nobody is left to read an answer: the surfaces' error writers write
// nothing then and log the error at Debug (LogClientGone), as the read
// paths always have.
func ClientGone(r *http.Request) bool { return r.Context().Err() != nil }

// LogClientGone logs, at Debug, err of a request that ClientGone.
func LogClientGone(log *slog.Logger, r *http.Request, err error) {
	log.Debug("request ended before its answer", "method", r.Method, "path", r.URL.Path,
		"cause", context.Cause(r.Context()), "err", err)
}

// Retryable reports whether a request failed because the database is
// unavailable or too slow, so that trying again later may work: the
// answer is a 503 with Retry-After, not a 500.
func Retryable(err error) bool {
	return store.Unavailable(err) || errors.Is(err, context.DeadlineExceeded)
}

// DecodeJSON reads a JSON body of at most limit bytes into v, rejecting
// unknown fields, trailing data and wrong content types with clear errors.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if err := JSONContentType(r); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err, limit)
		}
		return Errorf(http.StatusBadRequest, "invalid_json", "request body must hold a single JSON object")
	}
	return nil
}

// IsJSON reports whether the Content-Type ct names JSON: application/json
// or a +json type (RFC 6839), parameters allowed, compared without regard
// to case (RFC 9110, 8.3.1). application/jsonx is not JSON, and neither is
// a missing Content-Type.
func IsJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	typ, sub, _ := strings.Cut(mt, "/") // ParseMediaType lowercases
	return typ == "application" && (sub == "json" || strings.HasSuffix(sub, "+json"))
}

func jsonError(err error, limit int64) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than %d bytes", limit)
	case errors.As(err, &se):
		return Errorf(http.StatusBadRequest, "invalid_json", "invalid JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		return Errorf(http.StatusBadRequest, "invalid_json", "field %q: want %s, got JSON %s", Truncate(te.Field, 64), te.Type, te.Value)
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "invalid_json", "request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, "invalid_json", "request body is truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return Errorf(http.StatusBadRequest, "invalid_json", "%s", Truncate(strings.TrimPrefix(err.Error(), "json: "), MaxMessage))
	}
	return Errorf(http.StatusBadRequest, "invalid_json", "invalid JSON: %s", Truncate(err.Error(), MaxMessage))
}
