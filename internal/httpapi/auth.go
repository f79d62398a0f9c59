package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"
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

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Authenticate(r)
		if err != nil {
			if errors.Is(err, ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Basic realm="jobstream"`)
				s.writeError(w, r, errorf(http.StatusUnauthorized, "unauthenticated", "%v", err))
				return
			}
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}
