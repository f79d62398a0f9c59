package semoss_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// loginServer starts a server configured by serve's flags (the
// authenticator wired as `jobstream serve` wires it) and returns its base
// URL and an API key.
func loginServer(t *testing.T, args ...string) (string, apiKey) {
	t.Helper()
	db := testserver.Database(t)
	st := store.New(testserver.Pool(t, db, 2))
	base := startInProcess(t, db, server.Deps{Engines: semossEngines()}, append([]string{"--dev=false"}, args...)...)
	key, secret, err := auth.CreateKey(context.Background(), st, "login", "")
	if err != nil {
		t.Fatal(err)
	}
	return base, apiKey{Access: key.AccessKey, Secret: secret}
}

// postLogin sends POST /Monolith/api/auth/login with k and the headers
// (name, value pairs) and returns the status, the session cookie set (nil
// if none) and the body.
func postLogin(t *testing.T, base string, k apiKey, header ...string) (int, *http.Cookie, string) {
	t.Helper()
	form := url.Values{"username": {k.Access}, "password": {k.Secret}}
	req, err := http.NewRequest(http.MethodPost, base+"/Monolith/api/auth/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == auth.CookieName {
			cookie = c
		}
	}
	return res.StatusCode, cookie, string(body)
}

// TestLoginCSRF: under --csrf, a login that a browser sends for another
// origin's page is refused with a 403 saying why, and starts no session
// (jobstream issue 18 item 16: any page could log the visitor into the
// attacker's key). The server's own origin, an origin of --cors-origins
// and clients that are not browsers (no Origin) log in.
func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	base, k := loginServer(t, "--csrf", "--cors-origins", "https://ui.example")
	for _, tc := range []struct {
		name   string
		header []string
		ok     bool
	}{
		{"CrossOrigin", []string{"Origin", "https://evil.example"}, false},
		{"CrossOriginSameHostOtherPort", []string{"Origin", strings.Replace(base, "127.0.0.1:", "127.0.0.1:1", 1)}, false},
		{"NullOrigin", []string{"Origin", "null"}, false},
		{"CrossSiteNoOrigin", []string{"Sec-Fetch-Site", "cross-site"}, false},
		{"WildcardIsNoLoginOrigin", []string{"Origin", "*"}, false},
		{"SameOrigin", []string{"Origin", base, "Sec-Fetch-Site", "same-origin"}, true},
		{"CORSOrigin", []string{"Origin", "https://ui.example"}, true},
		{"NotABrowser", nil, true},
	} {
		status, cookie, body := postLogin(t, base, k, tc.header...)
		switch {
		case tc.ok && (status != http.StatusOK || cookie == nil):
			t.Errorf("%s: %d, cookie %v, %s; want a login", tc.name, status, cookie, body)
		case !tc.ok && (status != http.StatusForbidden || cookie != nil || !strings.Contains(body, "login refused")):
			t.Errorf("%s: %d, cookie %v, %s; want 403 saying the login was refused, and no session", tc.name, status, cookie, body)
		}
	}

	// Without --csrf nothing changes for cross-origin logins.
	open, k2 := loginServer(t)
	if status, cookie, body := postLogin(t, open, k2, "Origin", "https://evil.example"); status != http.StatusOK || cookie == nil {
		t.Errorf("cross-origin login without --csrf: %d %s", status, body)
	}
}

// TestSecureCookieBehindProxy: behind a TLS proxy listed in
// --trusted-proxies, its X-Forwarded-Proto: https makes the session cookie
// Secure (and the https origin the server's own); from any other peer the
// header is the client's word and is ignored (jobstream issue 18 item 16).
func TestSecureCookieBehindProxy(t *testing.T) {
	t.Parallel()
	// The test's client connects from loopback: it is the proxy.
	behind, k := loginServer(t, "--csrf", "--trusted-proxies", "127.0.0.1, ::1")
	host := strings.TrimPrefix(behind, "http://")
	status, cookie, body := postLogin(t, behind, k, "X-Forwarded-Proto", "https", "Origin", "https://"+host)
	if status != http.StatusOK || cookie == nil || !cookie.Secure {
		t.Fatalf("login through the trusted TLS proxy: %d, cookie %+v, %s; want a Secure session cookie", status, cookie, body)
	}
	// The proxy said https: the http origin is another one now.
	if status, _, body := postLogin(t, behind, k, "X-Forwarded-Proto", "https", "Origin", "http://"+host); status != http.StatusForbidden {
		t.Errorf("http origin behind a TLS proxy: %d %s, want 403", status, body)
	}
	if status, cookie, body := postLogin(t, behind, k); status != http.StatusOK || cookie == nil || cookie.Secure {
		t.Errorf("plain http through the proxy: %d, cookie %+v, %s; want a session cookie, not Secure", status, cookie, body)
	}

	// The same header from a peer that is not a trusted proxy.
	direct, k2 := loginServer(t, "--trusted-proxies", "10.0.0.0/8")
	if status, cookie, body := postLogin(t, direct, k2, "X-Forwarded-Proto", "https"); status != http.StatusOK || cookie == nil || cookie.Secure {
		t.Errorf("X-Forwarded-Proto from an untrusted peer: %d, cookie %+v, %s; want it ignored", status, cookie, body)
	}
}
