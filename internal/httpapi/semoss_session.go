package httpapi

import (
	"errors"
	"net/http"
)

// SessionAuthenticator is an Authenticator that also runs SEMOSS-style
// sessions: a login (GET /config with Basic credentials, or POST
// /auth/login) starts a session whose cookie authenticates later requests,
// on any node. internal/auth implements it. With a plain Authenticator the
// SEMOSS surface has no sessions, so pixelJobStreaming without offset and
// /engine/partial are unavailable.
type SessionAuthenticator interface {
	Authenticator
	// Login authenticates r and makes sure it has a session, starting one
	// (and setting its cookie on w) when r carries credentials (or, in dev
	// mode, nothing) but no session of its own. ErrUnauthenticated when r
	// carries no valid credentials.
	Login(w http.ResponseWriter, r *http.Request) (Login, error)
	// LoginWith is Login with an access key and secret given as a user
	// name and password (POST /auth/login).
	LoginWith(w http.ResponseWriter, r *http.Request, accessKey, secret string) (Login, error)
	// Logout ends r's session, if any, and clears its cookie.
	Logout(w http.ResponseWriter, r *http.Request) error
	// CSRFEnabled reports whether POSTs authenticated by the session
	// cookie must carry a CSRF token.
	CSRFEnabled() bool
	// CSRFToken returns the CSRF token of r's session (ErrUnauthenticated
	// without one).
	CSRFToken(r *http.Request) (string, error)
	// CheckCSRF returns an error when r needs a CSRF token and lacks the
	// right one.
	CheckCSRF(r *http.Request) error
}

// Login is a logged-in SEMOSS session.
type Login struct {
	Principal Principal
	// Name is the user shown in /config's loginDetails.
	Name string
	// CSRFToken is the session's CSRF token when CSRF protection is on.
	CSRFToken string
}

// loginProvider is the provider name under which logins are reported.
const loginProvider = "native"

// semossConfig serves GET /config: the system configuration SEMOSS clients
// read at start. loginDetails is non-empty when the request is logged in;
// Basic credentials (or, in dev mode, none) start a session here and set
// its cookie. Wrong credentials read as logged out, as in SEMOSS.
func (s *Server) semossConfig(w http.ResponseWriter, r *http.Request) {
	loginDetails := map[string]string{}
	body := map[string]any{
		"loginDetails": loginDetails,
		"logins":       map[string]bool{loginProvider: true},
		"availableProviders": []map[string]any{
			{"provider": loginProvider, "name": "API key (access key / secret key)", "isOauth": false},
		},
		"csrf": false,
	}
	if sa, ok := s.auth.(SessionAuthenticator); ok {
		body["csrf"] = sa.CSRFEnabled()
		l, err := sa.Login(w, r)
		switch {
		case err == nil:
			loginDetails[loginProvider] = l.Name
			if l.CSRFToken != "" {
				body["X-CSRF-Token"] = l.CSRFToken
			}
		case !errors.Is(err, ErrUnauthenticated):
			s.writeSemossError(w, r, err)
			return
		}
	} else if p, err := s.auth.Authenticate(r); err == nil {
		loginDetails[loginProvider] = p.Tenant
	}
	writeJSON(w, http.StatusOK, body)
}

// semossFetchCSRF serves GET /config/fetchCsrf: the session's CSRF token in
// the X-CSRF-Token response header.
func (s *Server) semossFetchCSRF(w http.ResponseWriter, r *http.Request) {
	sa, ok := s.auth.(SessionAuthenticator)
	if !ok || !sa.CSRFEnabled() {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	token, err := sa.CSRFToken(r)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			s.writeSemossError(w, r, semossErrorf(http.StatusUnauthorized, "Unauthorized", "%v", err))
			return
		}
		s.writeSemossError(w, r, err)
		return
	}
	w.Header().Set("X-CSRF-Token", token)
	writeJSON(w, http.StatusOK, map[string]any{})
}

// semossLogin serves POST /auth/login: username is an access key, password
// its secret key. On success it starts a session and sets its cookie.
func (s *Server) semossLogin(w http.ResponseWriter, r *http.Request) {
	f, err := s.semossForm(w, r)
	if err != nil {
		s.writeSemossError(w, r, err)
		return
	}
	sa, ok := s.auth.(SessionAuthenticator)
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
		if errors.Is(err, ErrUnauthenticated) {
			s.writeSemossError(w, r, semossErrorf(http.StatusUnauthorized, "Unauthorized", "invalid username or password"))
			return
		}
		s.writeSemossError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"success": "true", "username": l.Name})
}

// semossLogout serves /logout/all: ends the session.
func (s *Server) semossLogout(w http.ResponseWriter, r *http.Request) {
	if sa, ok := s.auth.(SessionAuthenticator); ok {
		if err := sa.Logout(w, r); err != nil {
			s.writeSemossError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}
