package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
)

// Principal is who a request acts for. Every job query is filtered by
// Tenant.
type Principal struct {
	Tenant string
	// KeyID is the API key used, nil for anonymous (dev mode) requests.
	KeyID *uuid.UUID
	// SessionID is the SEMOSS session, when the request carried one.
	SessionID string
}

// ErrUnauthenticated means the request carried no valid credentials.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrForbidden means the request's credentials were valid but it may not
// do what it asks: a cookie-authenticated unsafe request without its CSRF
// token. Authenticate answers it with 403.
var ErrForbidden = errors.New("forbidden")

// Authenticator finds the Principal of a request.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// DevTenant is the tenant of anonymous requests in dev mode.
const DevTenant = "dev"

// DevAuth lets every request in as the DevTenant (explicit, off-by-default
// dev mode; see config.DevMode).
type DevAuth struct{}

// Authenticate implements Authenticator.
func (DevAuth) Authenticate(*http.Request) (Principal, error) {
	return Principal{Tenant: DevTenant}, nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p, for PrincipalFrom.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom is the Principal that authentication middleware put in
// ctx; the zero Principal if none did.
func PrincipalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// Authenticate is middleware that authenticates each request with a and
// hands it on with its Principal in the context (PrincipalFrom). A request
// without valid credentials gets a 401 *APIError (code "unauthenticated")
// with WWW-Authenticate where Challenge sets it, one refused by a
// (ErrForbidden: a missing CSRF token) a 403 (code "csrf"); writeError
// writes that, or any other failure of a, in the calling surface's error
// shape. The request runs under a context that ends when its key is
// revoked (see Revoker).
//
//	r.Use(httpapi.Authenticate(auth, writeError))
func Authenticate(a Authenticator, writeError func(w http.ResponseWriter, r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := a.Authenticate(r)
			if err != nil {
				if errors.Is(err, ErrUnauthenticated) {
					Challenge(w, r)
					writeError(w, r, Errorf(http.StatusUnauthorized, "unauthenticated", "%v", err))
					return
				}
				if errors.Is(err, ErrForbidden) {
					writeError(w, r, Errorf(http.StatusForbidden, "csrf", "%v", err))
					return
				}
				writeError(w, r, err)
				return
			}
			// The audit trail names the key behind every change the
			// request makes and every read of a job's content it does
			// (job_events.actor; store.NoteAccess).
			r = r.WithContext(store.WithActor(r.Context(), store.Actor{
				Name:    store.KeyActor(p.KeyID, p.Tenant),
				Request: r.Method + " " + r.URL.EscapedPath(),
			}))
			serveAs(a, p, next, w, r, func(w http.ResponseWriter, r *http.Request, err error) {
				writeError(w, r, Errorf(http.StatusUnauthorized, "unauthenticated", "%v", err))
			})
		})
	}
}

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
	// CheckCSRF returns an error (wrapping ErrForbidden) when r rides on
	// the session cookie and lacks the session's CSRF token, whatever
	// its method. Authenticate applies the same check to unsafe methods;
	// a route outside Authenticate that acts on the session (the SEMOSS
	// logout, on GET too) calls it itself.
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

// Challenge asks for Basic credentials on a 401 (WWW-Authenticate), except
// on requests a page's script made (fetch, XMLHttpRequest, EventSource:
// browsers send Sec-Fetch-Mode, and it is "navigate" only for a page
// load). A browser answers the challenge with a login dialog of its own
// over the page that asked, which for the web console, with a login form
// of its own, would be a dialog on every expired session.
func Challenge(w http.ResponseWriter, r *http.Request) {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="jobstream"`)
}
