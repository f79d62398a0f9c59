package httpapi

import (
	"net/http"
	"net/url"
	"strings"
)

// JSONContentType is the content-type rule of every route that reads a JSON
// body, on every surface: the Content-Type must name JSON (IsJSON:
// application/json or a +json type, in any case, with well-formed
// parameters). A missing one is refused too, so that a browser's simple
// cross-site POST (text/plain, form-encoded) never reaches a JSON route.
// The error is a 415 naming what was sent.
func JSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	switch {
	case ct == "":
		return Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json; the request has none")
	case !IsJSON(ct):
		return Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json, got %q", Truncate(ct, 64))
	}
	return nil
}

// ParseQuery parses a raw query string strictly: url.Values as
// url.ParseQuery makes them, but a malformed pair (a ";" separator, a bad
// %-escape) is a 400 naming its parameter, where url.URL.Query drops it
// without a word (so that ?status=completed;x listed every job).
func ParseQuery(raw string) (url.Values, error) {
	v := url.Values{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		name := key
		if kerr != nil {
			name = rawKey
		}
		name = Truncate(name, 64)
		switch {
		case strings.Contains(pair, ";"):
			return nil, Errorf(http.StatusBadRequest, "invalid_query", "query parameter %q: \";\" is not a separator; write \"&\", or %%3B for a semicolon in a value", name)
		case kerr != nil:
			return nil, Errorf(http.StatusBadRequest, "invalid_query", "query parameter %q: its name is not a valid URL-encoded string", name)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, Errorf(http.StatusBadRequest, "invalid_query", "query parameter %q: its value is not a valid URL-encoded string", name)
		}
		v[key] = append(v[key], value)
	}
	return v, nil
}

// ValidQuery is middleware answering a request whose query string is
// malformed (ParseQuery) with a 400 naming the parameter, written by
// writeErr in the surface's error shape, before anything reads the query.
func ValidQuery(writeErr func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := ParseQuery(r.URL.RawQuery); err != nil {
				writeErr(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
