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
			if origin != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, X-CSRF-Token")
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
