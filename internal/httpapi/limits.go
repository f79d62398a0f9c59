package httpapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults for Limits.
const (
	DefaultRatePerSecond  = 1000
	DefaultRateBurst      = 2000
	DefaultMaxInFlightKey = 5000
)

// Limits protects the server from one client: a token-bucket request rate
// and a cap on concurrent requests (long-polls and SSE streams included)
// per principal. Both answer 429 with Retry-After.
type Limits struct {
	// RatePerSecond is the sustained request rate allowed per principal; 0
	// disables the rate limit. Defaults to 1000 (set by the server config).
	RatePerSecond float64
	// Burst is the bucket size. Defaults to 2 × RatePerSecond.
	Burst int
	// MaxInFlight caps concurrent requests per principal; 0 disables it.
	MaxInFlight int

	mu      sync.Mutex
	clients map[string]*clientLimit
	sweep   time.Time
}

type clientLimit struct {
	limiter  *rate.Limiter
	inFlight int
	seen     time.Time
}

// principalKey identifies who a limit applies to: the API key, else the
// tenant, else (anonymous dev mode) the client address.
func limitKey(p Principal, r *http.Request) string {
	switch {
	case p.KeyID != nil:
		return "key:" + p.KeyID.String()
	case p.Tenant != "" && p.Tenant != DevTenant:
		return "tenant:" + p.Tenant
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// acquire admits one request for key, or returns how long to wait.
func (l *Limits) acquire(key string, now time.Time) (release func(), retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients == nil {
		l.clients = map[string]*clientLimit{}
	}
	if now.Sub(l.sweep) > time.Minute {
		// Forget idle clients so the map stays bounded by recent ones.
		for k, c := range l.clients {
			if c.inFlight == 0 && now.Sub(c.seen) > time.Minute {
				delete(l.clients, k)
			}
		}
		l.sweep = now
	}
	c := l.clients[key]
	if c == nil {
		c = &clientLimit{}
		if l.RatePerSecond > 0 {
			burst := l.Burst
			if burst <= 0 {
				burst = int(math.Max(1, 2*l.RatePerSecond))
			}
			c.limiter = rate.NewLimiter(rate.Limit(l.RatePerSecond), burst)
		}
		l.clients[key] = c
	}
	c.seen = now
	if l.MaxInFlight > 0 && c.inFlight >= l.MaxInFlight {
		return nil, time.Second, false
	}
	if c.limiter != nil {
		res := c.limiter.ReserveN(now, 1)
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			return nil, d, false
		}
	}
	c.inFlight++
	return func() {
		l.mu.Lock()
		c.inFlight--
		l.mu.Unlock()
	}, 0, true
}

// Limit is middleware applying l after authentication (it keys on
// PrincipalFrom); a nil l admits everything. A refused request gets
// Retry-After, and refuse writes the 429 body in the calling surface's
// error shape.
//
//	r.Use(httpapi.Authenticate(auth, writeError), httpapi.Limit(limits, refuse))
func Limit(l *Limits, refuse func(w http.ResponseWriter, r *http.Request, wait time.Duration)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			release, wait, ok := l.acquire(limitKey(PrincipalFrom(r.Context()), r), time.Now())
			if !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				refuse(w, r, wait)
				return
			}
			defer release()
			next.ServeHTTP(w, r)
		})
	}
}
