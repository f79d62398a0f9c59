package httpapi

import (
	"net/http"
	"strings"
)

// CORS allows browser front ends on other origins (a semoss-ui dev server,
// say) to call the API. It is off unless origins are configured.
//
//	handler = httpapi.CORS([]string{"https://app.example.com"}, handler)
//
// An origin of "*" allows any origin, but then without credentials
// (cookies, Basic auth), as browsers require.
func CORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	allowed := map[string]bool{}
	any := false
	for _, o := range origins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "*" {
			any = true
		} else if o != "" {
			allowed[o] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		if origin != "" {
			h.Add("Vary", "Origin")
			switch {
			case allowed[origin]:
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
			case any:
				h.Set("Access-Control-Allow-Origin", "*")
			default:
				origin = ""
			}
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if origin != "" {
				h.Set("Access-Control-Allow-Methods", corsMethods)
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders(r.Header.Values("Access-Control-Request-Headers")))
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if origin != "" {
			h.Set("Access-Control-Expose-Headers", "X-CSRF-Token, Location")
		}
		next.ServeHTTP(w, r)
	})
}

// corsMethods are the methods of the API's routes: DELETE lifts a hold
// (/v1/jobs/{id}/hold) and deletes a response (/v1/responses/{id}).
const corsMethods = "GET, POST, DELETE, OPTIONS"

// corsHeaders are the request headers a cross-origin page may send: the
// API's own, and those of OpenAI's SDKs in a browser (OpenAI-Beta and the
// like, and X-Stainless-*, whose names grow with SDK versions: any name
// under that prefix is allowed).
var corsHeaders = map[string]bool{
	"authorization": true, "content-type": true, "last-event-id": true, "x-csrf-token": true,
	"accept": true, "openai-beta": true, "openai-organization": true, "openai-project": true,
	"idempotency-key": true,
}

const corsHeaderPrefix = "x-stainless-"

// corsDefaultHeaders answer a preflight that names no headers.
const corsDefaultHeaders = "Authorization, Content-Type, Last-Event-ID, X-CSRF-Token, OpenAI-Beta"

// corsAllowHeaders answers a preflight's Access-Control-Request-Headers:
// the requested headers that are allowed (a header left out
// fails the preflight, as it should), or corsDefaultHeaders when none were
// requested. At most 64 names of at most 64 bytes are considered.
func corsAllowHeaders(requested []string) string {
	var out []string
	seen := map[string]bool{}
	for _, line := range requested {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" || len(name) > 64 || seen[name] || len(out) == 64 {
				continue
			}
			if corsHeaders[name] || (strings.HasPrefix(name, corsHeaderPrefix) && validHeaderName(name)) {
				seen[name] = true
				out = append(out, http.CanonicalHeaderKey(name))
			}
		}
	}
	if len(out) == 0 {
		return corsDefaultHeaders
	}
	return strings.Join(out, ", ")
}

// validHeaderName reports whether name is a header field name (an RFC 9110
// token, lower case here), so that nothing else is echoed back.
func validHeaderName(name string) bool {
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", c):
		default:
			return false
		}
	}
	return true
}
