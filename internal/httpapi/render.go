package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// APIError is the one error shape of the native API:
// {"error":{"code":"invalid_offset","message":"offset must be ..."}}.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError writes err: an *APIError as itself, an unreachable database
// as a 503 with Retry-After, anything else as a 500 whose details go to the
// log, not the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *APIError
	switch {
	case errors.As(err, &ae):
	case retryable(err):
		// The database is restarting or unreachable: not the client's
		// fault, and worth retrying.
		s.log.Warn("request failed: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		ae = &APIError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the database is unavailable; retry shortly"}
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = &APIError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error"}
	}
	writeJSON(w, ae.Status, map[string]*APIError{"error": ae})
}

// decodeJSON reads a JSON body of at most limit bytes into v, rejecting
// unknown fields, trailing data and wrong content types with clear errors.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json, got %q", ct)
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
		return errorf(http.StatusBadRequest, "invalid_json", "request body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error, limit int64) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than %d bytes", limit)
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "invalid_json", "invalid JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		return errorf(http.StatusBadRequest, "invalid_json", "field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "invalid_json", "request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "invalid_json", "request body is truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return errorf(http.StatusBadRequest, "invalid_json", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return errorf(http.StatusBadRequest, "invalid_json", "invalid JSON: %v", err)
}
