package semoss

import (
	"errors"
	"net/http"

	"github.com/jobstream/jobstream/internal/httpapi"
)

// loginProvider is the provider name under which logins are reported.
const loginProvider = "native"

// Config serves GET /config: the system configuration SEMOSS clients
// read at start. loginDetails is non-empty when the request is logged in;
// Basic credentials (or, in dev mode, none) start a session here and set
// its cookie. Wrong credentials read as logged out, as in SEMOSS.
func (s *Server) Config(w http.ResponseWriter, r *http.Request) {
	loginDetails := map[string]string{}
	body := map[string]any{
		"loginDetails": loginDetails,
		"logins":       map[string]bool{loginProvider: true},
		"availableProviders": []map[string]any{
			{"provider": loginProvider, "name": "API key (access key / secret key)", "isOauth": false},
		},
		"csrf": false,
	}
	if sa, ok := s.auth.(httpapi.SessionAuthenticator); ok {
		body["csrf"] = sa.CSRFEnabled()
		l, err := sa.Login(w, r)
		switch {
		case err == nil:
			loginDetails[loginProvider] = l.Name
			if l.CSRFToken != "" {
				body["X-CSRF-Token"] = l.CSRFToken
			}
		case !errors.Is(err, httpapi.ErrUnauthenticated):
			s.writeSemossError(w, r, err)
			return
		}
	} else if p, err := s.auth.Authenticate(r); err == nil {
		loginDetails[loginProvider] = p.Tenant
	}
	writeJSON(w, http.StatusOK, body)
}

// FetchCSRF serves GET /config/fetchCsrf: the session's CSRF token in
// the X-CSRF-Token response header.
func (s *Server) FetchCSRF(w http.ResponseWriter, r *http.Request) {
	sa, ok := s.auth.(httpapi.SessionAuthenticator)
	if !ok || !sa.CSRFEnabled() {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	token, err := sa.CSRFToken(r)
	if err != nil {
		if errors.Is(err, httpapi.ErrUnauthenticated) {
			s.writeSemossError(w, r, semossErrorf(http.StatusUnauthorized, "Unauthorized", "%v", err))
			return
		}
		s.writeSemossError(w, r, err)
		return
	}
	w.Header().Set("X-CSRF-Token", token)
	writeJSON(w, http.StatusOK, map[string]any{})
}

// Login serves POST /auth/login: username is an access key, password
// its secret key. On success it starts a session and sets its cookie.
// With CSRF protection on, a login from another origin's page is a 403
// (auth.Authenticator.LoginWith).
func (s *Server) Login(w http.ResponseWriter, r *http.Request) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	sa, ok := s.auth.(httpapi.SessionAuthenticator)
	if !ok {
		s.writeSemossError(w, r, semossErrorf(http.StatusNotFound, "NotAvailable", "this server has no logins"))
		return
	}
	user, pass := f.Get("username"), f.Get("password")
	if user == "" || pass == "" {
		s.writeSemossError(w, r, semossErrorf(http.StatusUnauthorized, "Unauthorized", "username (an access key) and password (its secret key) are required"))
		return
	}
	l, err := sa.LoginWith(w, r, user, pass)
	if err != nil {
		switch {
		case errors.Is(err, httpapi.ErrUnauthenticated):
			err = semossErrorf(http.StatusUnauthorized, "Unauthorized", "invalid username or password")
		case errors.Is(err, httpapi.ErrForbidden):
			// A cross-origin login under CSRF protection.
			err = semossErrorf(http.StatusForbidden, "CSRF", "%v", err)
		}
		s.writeSemossError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"success": "true", "username": l.Name})
}

// Logout serves /logout/all (GET, as semoss-ui sends it, or POST): ends
// the session. The route authenticates itself (outside Authenticate), so
// it applies the CSRF check itself, on either method: with CSRF protection
// on, a logout that rides on the session cookie alone must carry the
// session's X-CSRF-Token (403 otherwise, and the session lives on), or any
// page the browser visits could end the session with a form or an image.
func (s *Server) Logout(w http.ResponseWriter, r *http.Request) {
	if sa, ok := s.auth.(httpapi.SessionAuthenticator); ok {
		if err := sa.CheckCSRF(r); err != nil {
			if errors.Is(err, httpapi.ErrForbidden) {
				err = semossErrorf(http.StatusForbidden, "CSRF", "%v", err)
			}
			s.writeSemossError(w, r, err)
			return
		}
		if err := sa.Logout(w, r); err != nil {
			s.writeSemossError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}
