package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// TrustedProxies are the reverse proxies whose X-Forwarded-Proto and
// X-Forwarded-Host the server believes (serve's --trusted-proxies). A
// request from any other peer is taken as it came: its forwarding headers
// are the client's own words, and a client could say anything.
type TrustedProxies []netip.Prefix

// Trusts reports whether r came straight from one of the proxies.
func (p TrustedProxies) Trusts(r *http.Request) bool {
	if len(p) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, prefix := range p {
		if prefix.Contains(a) {
			return true
		}
	}
	return false
}

// forwarded is the last value of a forwarding header: what the nearest
// proxy, the trusted one, set or appended.
func forwarded(r *http.Request, name string) string {
	v := r.Header.Values(name)
	if len(v) == 0 {
		return ""
	}
	last := v[len(v)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.TrimSpace(last)
}

// Scheme is the scheme the client used to reach the server: "https" for a
// TLS connection, or when a trusted proxy says so (X-Forwarded-Proto);
// "http" otherwise. known is false for "http" from a peer that is not a
// trusted proxy: an untrusted proxy in front may have terminated TLS.
func (p TrustedProxies) Scheme(r *http.Request) (scheme string, known bool) {
	if r.TLS != nil {
		return "https", true
	}
	if p.Trusts(r) {
		if strings.EqualFold(forwarded(r, "X-Forwarded-Proto"), "https") {
			return "https", true
		}
		return "http", true
	}
	return "http", false
}

// Host is the host (and port) the client asked for: a trusted proxy's
// X-Forwarded-Host, else the request's Host.
func (p TrustedProxies) Host(r *http.Request) string {
	if p.Trusts(r) {
		if h := forwarded(r, "X-Forwarded-Host"); h != "" {
			return h
		}
	}
	return r.Host
}

// SameOrigin reports whether origin (an Origin header's value) is the
// server's own origin as the client sees it: same scheme, host and port
// (default ports made explicit). When the scheme is not known (Scheme),
// either http or https with the same host and port counts.
func (p TrustedProxies) SameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return false
	}
	got := hostPort(u.Scheme, u.Host)
	scheme, known := p.Scheme(r)
	schemes := []string{scheme}
	if !known {
		schemes = []string{"http", "https"}
	}
	for _, s := range schemes {
		if strings.EqualFold(u.Scheme, s) && got == hostPort(s, p.Host(r)) {
			return true
		}
	}
	return false
}

// hostPort is host with its port made explicit, lower case.
func hostPort(scheme, host string) string {
	host = strings.ToLower(host)
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if strings.EqualFold(scheme, "https") {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
