package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
)

// clock is a settable clock for the caches.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testBundle struct {
	store *store.Store
	clock *clock
	auth  *auth.Authenticator
}

func setup(t *testing.T, cfg auth.Config) *testBundle {
	t.Helper()
	b := &testBundle{store: dbtest.Store(t), clock: &clock{now: time.Now()}}
	cfg.Now = b.clock.Now
	b.auth = auth.New(b.store, cfg)
	return b
}

type key struct {
	store.APIKey
	secret string
}

func (b *testBundle) key(t *testing.T, name, tenant string) key {
	t.Helper()
	k, secret, err := auth.CreateKey(context.Background(), b.store, name, tenant)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return key{k, secret}
}

func request(mods ...func(*http.Request)) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/Monolith/api/engine/runPixel", nil)
	for _, m := range mods {
		m(r)
	}
	return r
}

func basic(k key) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(k.AccessKey, k.secret) }
}

func cookie(c *http.Cookie) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(c) }
}

// login runs Login and returns the session cookie it set, if any.
func login(t *testing.T, a *auth.Authenticator, r *http.Request) (httpapi.Login, *http.Cookie) {
	t.Helper()
	w := httptest.NewRecorder()
	l, err := a.Login(w, r)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == auth.CookieName {
			return l, c
		}
	}
	return l, nil
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()

	t.Run("Basic", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{})
		k := b.key(t, "alice", "")
		p, err := b.auth.Authenticate(request(basic(k)))
		if err != nil {
			t.Fatal(err)
		}
		if p.Tenant != k.Tenant || p.KeyID == nil || *p.KeyID != k.ID || p.SessionID != "" {
			t.Fatalf("principal %+v for key %+v", p, k.APIKey)
		}
		if !strings.HasPrefix(k.AccessKey, "ak_") || !strings.HasPrefix(k.secret, "sk_") || len(k.secret) < 40 {
			t.Errorf("key shapes: %q %q", k.AccessKey, k.secret)
		}
	})

	// OpenAI SDKs send their api_key as a bearer token: "access:secret".
	t.Run("Bearer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{})
		k := b.key(t, "alice", "")
		for _, scheme := range []string{"Bearer ", "bearer "} {
			p, err := b.auth.Authenticate(request(func(r *http.Request) {
				r.Header.Set("Authorization", scheme+k.AccessKey+":"+k.secret)
			}))
			if err != nil {
				t.Fatalf("%q: %v", scheme, err)
			}
			if p.Tenant != k.Tenant || p.KeyID == nil || *p.KeyID != k.ID {
				t.Fatalf("principal %+v for key %+v", p, k.APIKey)
			}
		}
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{Dev: true}) // wrong credentials fail even in dev mode
		k := b.key(t, "alice", "")
		for name, r := range map[string]*http.Request{
			"WrongSecret":   request(func(r *http.Request) { r.SetBasicAuth(k.AccessKey, k.secret+"x") }),
			"UnknownAccess": request(func(r *http.Request) { r.SetBasicAuth("ak_nope", k.secret) }),
			"EmptyAccess":   request(func(r *http.Request) { r.SetBasicAuth("", "x") }),
			"Bearer":        request(func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }),
			"BearerWrong":   request(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+k.AccessKey+":"+k.secret+"x") }),
			"BadSession":    request(cookie(&http.Cookie{Name: auth.CookieName, Value: "nope"}), func(r *http.Request) { r.SetBasicAuth("ak_nope", "x") }),
		} {
			if _, err := b.auth.Authenticate(r); !errors.Is(err, httpapi.ErrUnauthenticated) {
				t.Errorf("%s: err %v, want ErrUnauthenticated", name, err)
			}
		}
	})

	t.Run("NoCredentials", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{})
		if _, err := b.auth.Authenticate(request()); !errors.Is(err, httpapi.ErrUnauthenticated) {
			t.Fatalf("err %v, want ErrUnauthenticated", err)
		}
		dev := setup(t, auth.Config{Dev: true})
		p, err := dev.auth.Authenticate(request())
		if err != nil || p.Tenant != httpapi.DevTenant || p.KeyID != nil {
			t.Fatalf("dev mode: %+v, %v", p, err)
		}
	})

	// Revocation reaches a cached key within CacheTTL.
	t.Run("RevokedAfterCacheTTL", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{CacheTTL: 5 * time.Second})
		k := b.key(t, "alice", "")
		if _, err := b.auth.Authenticate(request(basic(k))); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.KeyRevoke(context.Background(), k.AccessKey); err != nil {
			t.Fatal(err)
		}
		if _, err := b.auth.Authenticate(request(basic(k))); err != nil {
			t.Fatalf("within the cache TTL the cached key still works, got %v", err)
		}
		b.clock.Add(5 * time.Second)
		_, err := b.auth.Authenticate(request(basic(k)))
		if !errors.Is(err, httpapi.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("after the cache TTL: %v, want revoked", err)
		}
	})
}

func TestSessions(t *testing.T) {
	t.Parallel()

	t.Run("LoginSetsCookieThatAuthenticates", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{})
		k := b.key(t, "alice", "")
		l, c := login(t, b.auth, request(basic(k)))
		if c == nil || !c.HttpOnly || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || len(c.Value) < 40 {
			t.Fatalf("session cookie %+v", c)
		}
		if l.Name != "alice" || l.Principal.SessionID == "" || l.Principal.Tenant != k.Tenant || l.CSRFToken != "" {
			t.Fatalf("login %+v", l)
		}
		// The cookie alone, on another node (a fresh Authenticator: no cache).
		other := auth.New(b.store, auth.Config{})
		p, err := other.Authenticate(request(cookie(c)))
		if err != nil || p.SessionID != l.Principal.SessionID || *p.KeyID != k.ID {
			t.Fatalf("cookie on another node: %+v, %v", p, err)
		}
		// Basic with the cookie of the same key keeps the session, and
		// logging in again starts none.
		l2, c2 := login(t, other, request(basic(k), cookie(c)))
		if c2 != nil || l2.Principal.SessionID != l.Principal.SessionID {
			t.Fatalf("second login: new cookie %v, session %s", c2, l2.Principal.SessionID)
		}
	})

	t.Run("OtherKeysCookieIgnored", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{})
		alice, bob := b.key(t, "alice", ""), b.key(t, "bob", "")
		_, c := login(t, b.auth, request(basic(alice)))
		p, err := b.auth.Authenticate(request(basic(bob), cookie(c)))
		if err != nil || *p.KeyID != bob.ID || p.SessionID != "" {
			t.Fatalf("bob with alice's cookie: %+v, %v; want bob without a session", p, err)
		}
	})

	t.Run("LoginWith", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{})
		k := b.key(t, "alice", "")
		w := httptest.NewRecorder()
		l, err := b.auth.LoginWith(w, request(), k.AccessKey, k.secret)
		if err != nil || l.Name != "alice" || len(w.Result().Cookies()) != 1 {
			t.Fatalf("LoginWith: %+v, %v, cookies %v", l, err, w.Result().Cookies())
		}
		if _, err := b.auth.LoginWith(httptest.NewRecorder(), request(), k.AccessKey, "wrong"); !errors.Is(err, httpapi.ErrUnauthenticated) {
			t.Fatalf("wrong password: %v", err)
		}
	})

	t.Run("Logout", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{})
		k := b.key(t, "alice", "")
		_, c := login(t, b.auth, request(basic(k)))
		w := httptest.NewRecorder()
		if err := b.auth.Logout(w, request(cookie(c))); err != nil {
			t.Fatal(err)
		}
		if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
			t.Fatalf("logout cookies %+v, want one clearing the session", cs)
		}
		if _, err := b.auth.Authenticate(request(cookie(c))); !errors.Is(err, httpapi.ErrUnauthenticated) {
			t.Fatalf("after logout: %v", err)
		}
	})

	t.Run("DevAnonymousSession", func(t *testing.T) {
		t.Parallel()
		b := setup(t, auth.Config{Dev: true})
		l, c := login(t, b.auth, request())
		if c == nil || l.Principal.Tenant != httpapi.DevTenant || l.Principal.SessionID == "" || l.Name == "" {
			t.Fatalf("dev login %+v cookie %v", l, c)
		}
		p, err := b.auth.Authenticate(request(cookie(c)))
		if err != nil || p.SessionID != l.Principal.SessionID {
			t.Fatalf("anonymous cookie: %+v, %v", p, err)
		}
		// Without dev mode an anonymous session is worth nothing.
		strict := auth.New(b.store, auth.Config{})
		if _, err := strict.Authenticate(request(cookie(c))); !errors.Is(err, httpapi.ErrUnauthenticated) {
			t.Fatalf("anonymous session outside dev mode: %v", err)
		}
	})
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t, auth.Config{CSRF: true})
	k := b.key(t, "alice", "")
	l, c := login(t, b.auth, request(basic(k)))
	if l.CSRFToken == "" {
		t.Fatal("login gave no CSRF token")
	}
	token, err := b.auth.CSRFToken(request(cookie(c)))
	if err != nil || token != l.CSRFToken {
		t.Fatalf("CSRFToken = %q, %v; want %q", token, err, l.CSRFToken)
	}
	if _, err := b.auth.CSRFToken(request()); !errors.Is(err, httpapi.ErrUnauthenticated) {
		t.Fatalf("CSRFToken without a session: %v", err)
	}
	withHeader := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(auth.CSRFHeader, v) }
	}
	if err := b.auth.CheckCSRF(request(cookie(c))); err == nil {
		t.Error("cookie without token: accepted")
	}
	if err := b.auth.CheckCSRF(request(cookie(c), withHeader("wrong"))); err == nil {
		t.Error("cookie with a wrong token: accepted")
	}
	if err := b.auth.CheckCSRF(request(cookie(c), withHeader(token))); err != nil {
		t.Errorf("cookie with its token: %v", err)
	}
	if err := b.auth.CheckCSRF(request(basic(k))); err != nil {
		t.Errorf("Basic credentials need no token: %v", err)
	}
	off := setup(t, auth.Config{})
	if err := off.auth.CheckCSRF(request(cookie(c))); err != nil || off.auth.CSRFEnabled() {
		t.Errorf("CSRF off: %v", err)
	}
}

// TestHostileCredentials: an access key PostgreSQL cannot compare (a NUL,
// invalid UTF-8) is an ordinary wrong credential, on every way in: Basic
// on any request, GET /config's Login and POST /auth/login's LoginWith.
func TestHostileCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t, auth.Config{})
	for _, access := range []string{"ak_\xff", "ak_\x00", "\x00", "ak_\xc3", "ak_ok\x00\xff"} {
		r := request(func(r *http.Request) { r.SetBasicAuth(access, "x") })
		if _, err := b.auth.Authenticate(r); !errors.Is(err, httpapi.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", access, err)
		}
		if _, err := b.auth.Login(httptest.NewRecorder(), r); !errors.Is(err, httpapi.ErrUnauthenticated) {
			t.Errorf("Login(%q) = %v, want ErrUnauthenticated", access, err)
		}
		if _, err := b.auth.LoginWith(httptest.NewRecorder(), request(), access, "x"); !errors.Is(err, httpapi.ErrUnauthenticated) {
			t.Errorf("LoginWith(%q) = %v, want ErrUnauthenticated", access, err)
		}
	}
}

// TestRevocationEndsRequests: the requests a key has running when it is
// revoked (the contexts Guard gave them) end within CacheTTL, with cause
// ErrRevoked, and so do its lookups cached on this node: its next request
// is refused at once, not after the cache expires. Other keys' requests
// go on.
func TestRevocationEndsRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, auth.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.auth.WatchRevocations(ctx) }()
	defer func() { cancel(); <-done }()

	alice, bob := b.key(t, "alice", ""), b.key(t, "bob", "")
	pa, err := b.auth.Authenticate(request(basic(alice)))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.auth.Authenticate(request(basic(bob)))
	if err != nil {
		t.Fatal(err)
	}
	actx, aend := b.auth.Guard(context.Background(), pa)
	defer aend()
	bctx, bend := b.auth.Guard(context.Background(), pb)
	defer bend()

	start := time.Now()
	if _, err := b.store.KeyRevoke(context.Background(), alice.AccessKey); err != nil {
		t.Fatal(err)
	}
	select {
	case <-actx.Done():
	case <-time.After(time.Minute):
		t.Fatal("alice's request still running a minute after revocation")
	}
	if took := time.Since(start); took > auth.DefaultCacheTTL {
		t.Errorf("alice's request ended %s after revocation, more than the cache's %s", took, auth.DefaultCacheTTL)
	}
	if cause := context.Cause(actx); !errors.Is(cause, auth.ErrRevoked) || !errors.Is(cause, httpapi.ErrUnauthenticated) {
		t.Errorf("cause %v, want ErrRevoked", cause)
	}
	// The cache entry went with it (the fake clock never moved).
	if _, err := b.auth.Authenticate(request(basic(alice))); !errors.Is(err, httpapi.ErrUnauthenticated) {
		t.Errorf("alice after revocation: %v, want ErrUnauthenticated", err)
	}
	// A request guarded after the revocation was seen ends at once.
	late, lend := b.auth.Guard(context.Background(), pa)
	defer lend()
	if !errors.Is(context.Cause(late), auth.ErrRevoked) {
		t.Errorf("late guard: %v, want ErrRevoked", context.Cause(late))
	}
	if bctx.Err() != nil {
		t.Errorf("bob's request ended: %v", context.Cause(bctx))
	}
}

// TestSessionsBounded: a client that logs in on every request without
// keeping the cookie (GET /config with Basic credentials, again and again)
// does not grow the sessions table: its key keeps MaxSessionsPerKey.
func TestSessionsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, auth.Config{MaxSessionsPerKey: 5})
	k := b.key(t, "alice", "")
	for range 30 {
		if _, c := login(t, b.auth, request(basic(k))); c == nil {
			t.Fatal("no session cookie")
		}
	}
	var n int
	if err := dbtest.Pool(t).QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE api_key_id = $1`, k.ID).Scan(&n); err != nil || n != 5 {
		t.Fatalf("%d sessions (%v), want 5", n, err)
	}
	if auth.DefaultMaxSessionsPerKey > 10_000 {
		t.Errorf("DefaultMaxSessionsPerKey %d", auth.DefaultMaxSessionsPerKey)
	}
}

// TestCSRFEveryUnsafeMethod: with CSRF on, Authenticate itself refuses
// (ErrForbidden) every unsafe request authenticated by the session cookie
// alone without the token, whatever the route or surface: POST /v1/jobs,
// a cancel, a DELETE. Safe methods and Basic credentials need none.
func TestCSRFEveryUnsafeMethod(t *testing.T) {
	t.Parallel()
	b := setup(t, auth.Config{CSRF: true})
	k := b.key(t, "alice", "")
	l, c := login(t, b.auth, request(basic(k)))
	at := func(method, path string, mods ...func(*http.Request)) *http.Request {
		r := httptest.NewRequest(method, path, nil)
		r.AddCookie(c)
		for _, m := range mods {
			m(r)
		}
		return r
	}
	token := func(r *http.Request) { r.Header.Set(auth.CSRFHeader, l.CSRFToken) }
	for _, r := range []*http.Request{
		at(http.MethodPost, "/v1/jobs"),
		at(http.MethodPost, "/v1/jobs/0190a000-0000-7000-8000-000000000000/cancel"),
		at(http.MethodDelete, "/v1/jobs/x"),
		at(http.MethodPut, "/anything"),
		at(http.MethodPost, "/Monolith/api/engine/runPixel"),
		at(http.MethodPost, "/v1/jobs", func(r *http.Request) { r.Header.Set(auth.CSRFHeader, "wrong") }),
	} {
		if _, err := b.auth.Authenticate(r); !errors.Is(err, httpapi.ErrForbidden) {
			t.Errorf("%s %s by cookie without the token: %v, want ErrForbidden", r.Method, r.URL.Path, err)
		}
	}
	for _, r := range []*http.Request{
		at(http.MethodPost, "/v1/jobs", token),
		at(http.MethodGet, "/v1/jobs"),
		at(http.MethodHead, "/v1/jobs"),
		request(basic(k)),
	} {
		if _, err := b.auth.Authenticate(r); err != nil {
			t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
		}
	}
}
