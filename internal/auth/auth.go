// Package auth authenticates API requests with API keys and SEMOSS-style
// sessions, and implements httpapi.SessionAuthenticator.
//
// # Credentials
//
// An API key is an access key (public, like a user name) and a secret key,
// sent as HTTP Basic credentials (access:secret), or as the bearer token
// "access:secret" (what an OpenAI SDK sends as its api_key), on any
// request: native /v1, SEMOSS /Monolith/api or OpenAI /v1/responses.
// Secrets are 32 random bytes; the database holds only their SHA-256. A
// fast hash is the right one here: slow password hashes (bcrypt, argon2)
// exist to make guessing low-entropy passwords expensive, and a 256-bit
// random secret cannot be guessed, so they would only make every request
// slower. Comparisons are constant-time.
//
// # Sessions
//
// SEMOSS clients log in once (GET /config with Basic credentials, or POST
// /auth/login) and then send the session cookie, JSESSIONID. Sessions live
// in PostgreSQL (the sessions table, token stored hashed), so any node
// serves any session. A session ends after SessionTTL without use, at
// logout, or when its key is revoked. Basic credentials sent together with
// the cookie of a session of the same key keep that session (the Python
// SDK sends both); the cookie of another key's session is ignored.
//
// # Caching and revocation
//
// Basic auth on every request would cost a query per request, so key and
// session lookups are cached in memory for CacheTTL (5 s by default). A
// revoked key therefore stops working on every node within CacheTTL, and
// its sessions with it (revocation deletes them, and session lookups check
// the key). Requests already running when their key is revoked (SSE
// streams, long-polls, synchronous waits) end within the same bound:
// WatchRevocations polls the keys revoked lately, every RevocationPoll
// (1 s by default), cancels the contexts Guard gave those keys' requests,
// and forgets cached lookups of them.
//
// A session lives until SessionTTL without use, logout or revocation, and
// a key has at most MaxSessionsPerKey of them (1,000 by default): logging
// in again ends its least recently used session beyond that, so a client
// that logs in on every request cannot grow the sessions table.
//
// # Dev mode
//
// With Config.Dev, requests without credentials are let in as the tenant
// httpapi.DevTenant, and GET /config gives them an anonymous session (SEMOSS
// clients need one: pixelJobStreaming keeps its cursor per session).
// Credentials that are sent are still checked: wrong ones are refused even
// in dev mode.
//
// # CSRF
//
// With Config.CSRF, every unsafe request (any method but GET, HEAD,
// OPTIONS and TRACE) authenticated by the session cookie alone must carry
// the header X-CSRF-Token, whose value GET /config/fetchCsrf returns, on
// every surface: Authenticate refuses it otherwise (httpapi.ErrForbidden),
// so no authenticated route can forget the check; the SEMOSS logout, which
// authenticates itself, calls CheckCSRF, which checks GET too. The token is derived from the
// session's secret token, so every node can check it without storing
// anything. Requests with Basic credentials need none: a cross-site page
// cannot make a browser attach them.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
)

// CookieName is the session cookie, named as in SEMOSS (Tomcat).
const CookieName = "JSESSIONID"

// CSRFHeader carries the CSRF token, both ways.
const CSRFHeader = "X-CSRF-Token"

// Defaults for Config.
const (
	DefaultCacheTTL   = 5 * time.Second
	DefaultSessionTTL = 24 * time.Hour
	DefaultMaxCached  = 100_000
	// DefaultMaxSessionsPerKey is Config.MaxSessionsPerKey's default.
	DefaultMaxSessionsPerKey = 1000
	// DefaultRevocationPoll is Config.RevocationPoll's default.
	DefaultRevocationPoll = time.Second
)

// Config configures an Authenticator.
type Config struct {
	// Dev lets requests without credentials in as httpapi.DevTenant. Off
	// by default; never on a network others can reach.
	Dev bool
	// CSRF requires the X-CSRF-Token header on POSTs authenticated by the
	// session cookie alone, and refuses cross-origin logins (see
	// LoginWith). Defaults to false.
	CSRF bool
	// LoginOrigins are the other origins whose pages may log in (with
	// CSRF on): the front ends allowed to call the API (serve's
	// --cors-origins; "*" is not one).
	LoginOrigins []string
	// Proxies are the reverse proxies whose X-Forwarded-Proto and
	// X-Forwarded-Host are believed: behind a TLS proxy, the session
	// cookie is Secure.
	Proxies httpapi.TrustedProxies
	// CacheTTL is how long key and session lookups are cached in memory,
	// and so how long a revoked key may keep working. Defaults to 5 s.
	CacheTTL time.Duration
	// SessionTTL is how long a session lives without use. Defaults to 24 h.
	SessionTTL time.Duration
	// MaxCached bounds each cache's entries. Defaults to 100,000.
	MaxCached int
	// MaxSessionsPerKey caps a key's sessions (and anonymous sessions per
	// tenant, in dev mode): a new one ends the least recently used beyond
	// it. Defaults to 1,000.
	MaxSessionsPerKey int
	// RevocationPoll is how often WatchRevocations asks for keys revoked
	// lately. Defaults to 1 s; at most CacheTTL.
	RevocationPoll time.Duration
	// Now is the clock of the caches. Defaults to time.Now.
	Now func() time.Time
}

// Authenticator authenticates requests against the keys and sessions in a
// store. It implements httpapi.SessionAuthenticator.
type Authenticator struct {
	store    *store.Store
	cfg      Config
	keys     cache[string, store.APIKey]
	sessions cache[[sha256.Size]byte, store.Session]
	guards   guards
}

var _ httpapi.SessionAuthenticator = (*Authenticator)(nil)

// New returns an Authenticator on s.
func New(s *store.Store, cfg Config) *Authenticator {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxCached <= 0 {
		cfg.MaxCached = DefaultMaxCached
	}
	if cfg.MaxSessionsPerKey <= 0 {
		cfg.MaxSessionsPerKey = DefaultMaxSessionsPerKey
	}
	if cfg.RevocationPoll <= 0 {
		cfg.RevocationPoll = DefaultRevocationPoll
	}
	cfg.RevocationPoll = min(cfg.RevocationPoll, cfg.CacheTTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Authenticator{store: s, cfg: cfg}
	a.keys.init(cfg.MaxCached)
	a.sessions.init(cfg.MaxCached)
	a.guards.init()
	return a
}

// identity is an authenticated request.
type identity struct {
	httpapi.Principal
	// name is shown to SEMOSS clients as the logged-in user.
	name string
	// token is the session cookie's token when SessionID is set.
	token string
}

// unauthenticated is an httpapi.ErrUnauthenticated whose message is only
// the reason: the error response already carries the code
// "unauthenticated", and wrapping with %w printed it twice.
func unauthenticated(format string, args ...any) error {
	return unauthenticatedError{fmt.Sprintf(format, args...)}
}

type unauthenticatedError struct{ reason string }

func (e unauthenticatedError) Error() string { return e.reason }

func (e unauthenticatedError) Is(target error) bool { return target == httpapi.ErrUnauthenticated }

// Authenticate implements httpapi.Authenticator.
func (a *Authenticator) Authenticate(r *http.Request) (httpapi.Principal, error) {
	id, err := a.identify(r)
	return id.Principal, err
}

// identify finds who r acts for: its Basic credentials, else its session
// cookie (with its CSRF token, for an unsafe method), else (dev mode)
// nobody in particular.
func (a *Authenticator) identify(r *http.Request) (identity, error) {
	return a.identifyCSRF(r, true)
}

func (a *Authenticator) identifyCSRF(r *http.Request, csrf bool) (identity, error) {
	ctx := r.Context()
	sess, token, err := a.session(ctx, r)
	if err != nil {
		return identity{}, err
	}
	if r.Header.Get("Authorization") != "" {
		access, secret, ok := credentials(r)
		if !ok {
			return identity{}, unauthenticated("send the API key as HTTP Basic credentials (access key:secret key) or as \"Authorization: Bearer <access key>:<secret key>\"")
		}
		key, err := a.verify(ctx, access, secret)
		if err != nil {
			return identity{}, err
		}
		id := keyIdentity(key)
		if sess != nil && sess.APIKeyID != nil && *sess.APIKeyID == key.ID {
			id.SessionID, id.token = sess.ID.String(), token
		}
		return id, nil
	}
	if sess != nil && (sess.APIKeyID != nil || a.cfg.Dev) {
		if csrf {
			if err := a.checkCSRF(r, token); err != nil {
				return identity{}, err
			}
		}
		id := identity{
			Principal: httpapi.Principal{Tenant: sess.Tenant, KeyID: sess.APIKeyID, SessionID: sess.ID.String()},
			name:      sess.KeyName,
			token:     token,
		}
		if sess.APIKeyID == nil {
			id.name = anonymousName
		}
		return id, nil
	}
	if a.cfg.Dev {
		return identity{Principal: httpapi.Principal{Tenant: httpapi.DevTenant}, name: anonymousName}, nil
	}
	return identity{}, unauthenticated("send an API key as HTTP Basic credentials (access key:secret key), or the %s cookie that GET /Monolith/api/config sets", CookieName)
}

// credentials reads an API key from the Authorization header: HTTP Basic
// (access:secret), or a bearer token "access:secret", which is how the
// OpenAI SDKs send their api_key (issue 13).
func credentials(r *http.Request) (access, secret string, ok bool) {
	if access, secret, ok := r.BasicAuth(); ok {
		return access, secret, true
	}
	h := r.Header.Get("Authorization")
	if len(h) < len("Bearer ") || !strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		return "", "", false
	}
	return strings.Cut(strings.TrimSpace(h[len("Bearer "):]), ":")
}

// anonymousName is the logged-in user of dev mode's anonymous sessions.
const anonymousName = "anonymous (dev mode)"

func keyIdentity(k store.APIKey) identity {
	id := k.ID
	return identity{Principal: httpapi.Principal{Tenant: k.Tenant, KeyID: &id}, name: k.Name}
}

// verify checks an access key and its secret.
func (a *Authenticator) verify(ctx context.Context, access, secret string) (store.APIKey, error) {
	if access == "" || len(access) > 256 || store.CheckText("access key", access) != nil {
		// Not a key we could have issued, and PostgreSQL would refuse
		// to compare it (NUL, invalid UTF-8): a 401, never a failed
		// query.
		return store.APIKey{}, unauthenticated("invalid access key or secret key")
	}
	if secret == "" {
		// Says nothing about the access key, so tells an attacker nothing.
		return store.APIKey{}, unauthenticated("the secret key is missing: send access_key:secret_key as HTTP Basic credentials")
	}
	key, found, err := a.keys.get(a.cfg.Now(), access, func() (store.APIKey, bool, error) {
		k, err := a.store.KeyByAccess(ctx, access)
		if errors.Is(err, store.ErrNotFound) {
			return k, false, nil
		}
		return k, err == nil, err
	}, a.cfg.CacheTTL)
	if err != nil {
		return store.APIKey{}, err
	}
	sum := HashSecret(secret)
	if !found {
		// Same work as a real comparison, so timing does not tell which
		// access keys exist.
		subtle.ConstantTimeCompare(sum, make([]byte, len(sum)))
		return store.APIKey{}, unauthenticated("invalid access key or secret key")
	}
	if subtle.ConstantTimeCompare(sum, key.SecretHash) != 1 {
		return store.APIKey{}, unauthenticated("invalid access key or secret key")
	}
	if key.RevokedAt != nil {
		return store.APIKey{}, unauthenticated("the API key %s was revoked", access)
	}
	return key, nil
}

// session returns the live session of r's cookie, or nil.
func (a *Authenticator) session(ctx context.Context, r *http.Request) (*store.Session, string, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 256 {
		return nil, "", nil
	}
	h := sha256.Sum256([]byte(c.Value))
	now := a.cfg.Now()
	sess, found, err := a.sessions.get(now, h, func() (store.Session, bool, error) {
		s, err := a.store.SessionTouch(ctx, h[:], a.cfg.SessionTTL)
		if errors.Is(err, store.ErrNotFound) {
			return s, false, nil
		}
		return s, err == nil, err
	}, a.cfg.CacheTTL)
	if err != nil {
		return nil, "", err
	}
	if !found || !sess.ExpiresAt.After(now) {
		return nil, "", nil
	}
	return &sess, c.Value, nil
}

// Login implements httpapi.SessionAuthenticator: it authenticates r and
// makes sure it has a session, starting one (and setting its cookie on w)
// when r carries Basic credentials, or nothing in dev mode, and no session
// of its own.
func (a *Authenticator) Login(w http.ResponseWriter, r *http.Request) (httpapi.Login, error) {
	id, err := a.identify(r)
	if err != nil {
		return httpapi.Login{}, err
	}
	return a.login(w, r, id)
}

// LoginWith implements httpapi.SessionAuthenticator: it checks the given
// access key and secret (POST /auth/login's username and password) and
// starts a session for them unless r already has one of that key.
//
// With CSRF on, a login from another origin's page is refused (an error
// wrapping httpapi.ErrForbidden) before the credentials are looked at:
// otherwise any page could log the visitor's browser into the attacker's
// key (login CSRF), and what the visitor then submits would be the
// attacker's to read. See checkLoginOrigin.
func (a *Authenticator) LoginWith(w http.ResponseWriter, r *http.Request, access, secret string) (httpapi.Login, error) {
	if a.cfg.CSRF {
		if err := a.checkLoginOrigin(r); err != nil {
			return httpapi.Login{}, err
		}
	}
	key, err := a.verify(r.Context(), access, secret)
	if err != nil {
		return httpapi.Login{}, err
	}
	id := keyIdentity(key)
	sess, token, err := a.session(r.Context(), r)
	if err != nil {
		return httpapi.Login{}, err
	}
	if sess != nil && sess.APIKeyID != nil && *sess.APIKeyID == key.ID {
		id.SessionID, id.token = sess.ID.String(), token
	}
	return a.login(w, r, id)
}

// checkLoginOrigin refuses a login that a browser sends for another
// origin's page: its Origin is neither the server's own (as the client
// sees it: httpapi.TrustedProxies.SameOrigin) nor one of LoginOrigins, or
// is "null" (a sandboxed or file page); without an Origin, Sec-Fetch-Site
// says cross-site. A request with neither header is not a browser's (the
// Python SDK, curl) and goes on.
func (a *Authenticator) checkLoginOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			return fmt.Errorf("%w: cross-site login refused: the browser says this login comes from another site's page", httpapi.ErrForbidden)
		}
		return nil
	}
	if a.cfg.Proxies.SameOrigin(r, origin) {
		return nil
	}
	for _, o := range a.cfg.LoginOrigins {
		if o != "*" && strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return nil
		}
	}
	scheme, _ := a.cfg.Proxies.Scheme(r)
	return fmt.Errorf("%w: cross-origin login refused: Origin %q is neither this server (%s://%s) nor one of the origins allowed to call it (--cors-origins)",
		httpapi.ErrForbidden, httpapi.Truncate(origin, 100), scheme, httpapi.Truncate(a.cfg.Proxies.Host(r), 100))
}

// secure reports whether r reached the server over HTTPS, so that its
// session cookie must only travel over HTTPS.
func (a *Authenticator) secure(r *http.Request) bool {
	scheme, _ := a.cfg.Proxies.Scheme(r)
	return scheme == "https"
}

func (a *Authenticator) login(w http.ResponseWriter, r *http.Request, id identity) (httpapi.Login, error) {
	if id.SessionID == "" {
		token, err := randomToken()
		if err != nil {
			return httpapi.Login{}, err
		}
		h := sha256.Sum256([]byte(token))
		sess, err := a.store.SessionCreate(r.Context(), h[:], id.KeyID, id.name, id.Tenant, a.cfg.SessionTTL, a.cfg.MaxSessionsPerKey)
		if err != nil {
			return httpapi.Login{}, err
		}
		a.sessions.put(a.cfg.Now(), h, sess, a.cfg.CacheTTL)
		http.SetCookie(w, &http.Cookie{
			Name: CookieName, Value: token, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.secure(r),
		})
		id.SessionID, id.token = sess.ID.String(), token
	}
	l := httpapi.Login{Principal: id.Principal, Name: id.name}
	if a.cfg.CSRF {
		l.CSRFToken = csrfToken(id.token)
	}
	return l, nil
}

// Logout implements httpapi.SessionAuthenticator: it ends r's session, if
// any, and clears its cookie.
func (a *Authenticator) Logout(w http.ResponseWriter, r *http.Request) error {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	h := sha256.Sum256([]byte(c.Value))
	a.sessions.drop(h)
	if err := a.store.SessionDelete(r.Context(), h[:]); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: a.secure(r)})
	return nil
}

// CSRFEnabled implements httpapi.SessionAuthenticator.
func (a *Authenticator) CSRFEnabled() bool { return a.cfg.CSRF }

// CSRFToken implements httpapi.SessionAuthenticator: the CSRF token of r's
// session.
func (a *Authenticator) CSRFToken(r *http.Request) (string, error) {
	id, err := a.identifyCSRF(r, false) // the token is what it asks for
	if err != nil {
		return "", err
	}
	if id.token == "" {
		return "", unauthenticated("no session: GET /Monolith/api/config first (it sets the %s cookie)", CookieName)
	}
	return csrfToken(id.token), nil
}

// CheckCSRF implements httpapi.SessionAuthenticator: the SEMOSS logout,
// which authenticates itself, calls it. It applies to every method: the
// logout answers GET as well as POST (semoss-ui's is a GET), and a GET
// that changes state is as forgeable as a POST (an <img> will do).
func (a *Authenticator) CheckCSRF(r *http.Request) error {
	if r.Header.Get("Authorization") != "" {
		return nil
	}
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil // not cookie-authenticated: nothing a cross-site page could ride on
	}
	return a.checkCSRFToken(r, c.Value)
}

// checkCSRF refuses an unsafe request authenticated by the session whose
// cookie holds token when it lacks the session's CSRF token. Authenticate
// applies it to every request it lets in by cookie; safe methods change
// nothing on the routes behind it.
func (a *Authenticator) checkCSRF(r *http.Request, token string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return nil
	}
	return a.checkCSRFToken(r, token)
}

// checkCSRFToken refuses a request authenticated by the session whose
// cookie holds token when it lacks the session's CSRF token, whatever its
// method.
func (a *Authenticator) checkCSRFToken(r *http.Request, token string) error {
	if !a.cfg.CSRF {
		return nil
	}
	want := csrfToken(token)
	if got := r.Header.Get(CSRFHeader); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return fmt.Errorf("%w: missing or wrong %s header on a request authenticated by the %s cookie: GET /Monolith/api/config/fetchCsrf with %s: fetch returns it",
			httpapi.ErrForbidden, CSRFHeader, CookieName, CSRFHeader)
	}
	return nil
}

func csrfToken(sessionToken string) string {
	sum := sha256.Sum256([]byte("jobstream csrf\x00" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// HashSecret is what the database stores of a secret key.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Key prefixes make keys recognisable (and findable by secret scanners).
const (
	accessPrefix = "ak_"
	secretPrefix = "sk_"
)

// CreateKey makes a new API key named name and stores it. tenant "" gives
// the key a tenant of its own (its id), so it sees only its own jobs. The
// secret is returned once and never stored.
func CreateKey(ctx context.Context, s *store.Store, name, tenant string) (key store.APIKey, secret string, err error) {
	ab := make([]byte, 12)
	if _, err := rand.Read(ab); err != nil {
		return store.APIKey{}, "", fmt.Errorf("random access key: %w", err)
	}
	token, err := randomToken()
	if err != nil {
		return store.APIKey{}, "", err
	}
	secret = secretPrefix + token
	key, err = s.KeyCreate(ctx, store.NewKey{
		Name: name, Tenant: tenant, AccessKey: accessPrefix + hex.EncodeToString(ab), SecretHash: HashSecret(secret),
	})
	if err != nil {
		return store.APIKey{}, "", err
	}
	return key, secret, nil
}

// cache is a small TTL cache of lookups, negative ones included.
type cache[K comparable, V any] struct {
	mu      sync.Mutex
	max     int
	entries map[K]entry[V]
}

type entry[V any] struct {
	v     V
	found bool
	until time.Time
}

func (c *cache[K, V]) init(max int) {
	c.max = max
	c.entries = map[K]entry[V]{}
}

// get returns the cached lookup of k, or runs load and caches its result
// (errors are not cached).
func (c *cache[K, V]) get(now time.Time, k K, load func() (V, bool, error), ttl time.Duration) (V, bool, error) {
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.v, e.found, nil
	}
	v, found, err := load()
	if err != nil {
		return v, false, err
	}
	c.set(k, entry[V]{v: v, found: found, until: now.Add(ttl)}, now)
	return v, found, nil
}

func (c *cache[K, V]) put(now time.Time, k K, v V, ttl time.Duration) {
	c.set(k, entry[V]{v: v, found: true, until: now.Add(ttl)}, now)
}

func (c *cache[K, V]) set(k K, e entry[V], now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[k] = e
}

func (c *cache[K, V]) drop(k K) {
	c.mu.Lock()
	delete(c.entries, k)
	c.mu.Unlock()
}

// dropIf forgets every entry whose value matches.
func (c *cache[K, V]) dropIf(match func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.found && match(e.v) {
			delete(c.entries, k)
		}
	}
}
