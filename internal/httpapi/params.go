package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// JobIDParam reads the {id} URL parameter of a chi route: 400 when it is
// not a UUID.
func JobIDParam(r *http.Request) (uuid.UUID, error) {
	return ParseJobID(chi.URLParam(r, "id"))
}

// ParseJobID parses a job id, with a client-facing error.
func ParseJobID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, Errorf(http.StatusBadRequest, "invalid_job_id", "job id %q is not a UUID", Truncate(s, 64))
	}
	return id, nil
}

// ParseOffset parses a non-negative chunk offset ("" = 0).
func ParseOffset(name, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, Errorf(http.StatusBadRequest, "invalid_"+name, "%s must be a non-negative integer, got %q", name, Truncate(s, 64))
	}
	return int(n), nil
}

// ParseWait parses a wait in seconds ("2", "0.5") or as a Go duration
// ("250ms", "25s"); "" = def. Values above max are capped to max, so a
// client asking for a long wait gets the longest the server allows.
func ParseWait(name, s string, def, max time.Duration) (time.Duration, error) {
	if s == "" {
		return min(def, max), nil
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return 0, Errorf(http.StatusBadRequest, "invalid_"+name, "%s must be a non-negative number of seconds, got %q", name, Truncate(s, 64))
		}
		d = time.Duration(math.Min(f, 1e6) * float64(time.Second))
	} else if pd, err := time.ParseDuration(s); err == nil && pd >= 0 && strings.ContainsAny(s, "smh") {
		d = pd
	} else {
		return 0, Errorf(http.StatusBadRequest, "invalid_"+name, "%s must be a number of seconds (e.g. 25 or 0.5) or a duration (e.g. 250ms), got %q", name, Truncate(s, 64))
	}
	return min(d, max), nil
}

// ParseLimit parses a page size in [1, max] ("" = def). Values above max are
// capped.
func ParseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, Errorf(http.StatusBadRequest, "invalid_limit", "limit must be a positive integer, got %q", Truncate(s, 64))
	}
	return min(n, max), nil
}

// MaxMessage caps the length of an error message built from input.
const MaxMessage = 512

// Truncate cuts s to at most n bytes, on a rune boundary, marking the cut
// ("..."): an error message never echoes a whole input back.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
