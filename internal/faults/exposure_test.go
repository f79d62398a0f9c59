package faults_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDrainKeepsListening: after SIGTERM a node keeps its port open for
// the drain (--shutdown-grace): /readyz answers 503, a new job 503 with
// Retry-After, and only then does the port close and the process exit
// cleanly. A load balancer can route around a node that says it is
// draining; one that refuses connections looks dead.
func TestDrainKeepsListening(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.serve("--dev=false", "--shutdown-grace", "3s")
	k := b.key("drain")
	if got := b.readyz(a); got != http.StatusOK {
		t.Fatalf("/readyz = %d before SIGTERM", got)
	}
	start := time.Now()
	if err := syscall.Kill(a.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "/readyz to say 503", func() bool { return b.readyz(a) == http.StatusServiceUnavailable })
	resp := b.do(t, k, http.MethodPost, a.URL+"/v1/jobs", `{"command":"too late"}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST /v1/jobs while draining: %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	sresp := b.do(t, k, http.MethodPost, a.URL+"/Monolith/api/engine/runPixelAsync", `expression=LLM(command="late")`)
	sbody, _ := io.ReadAll(sresp.Body)
	if sresp.StatusCode != http.StatusServiceUnavailable || sresp.Header.Get("Retry-After") == "" {
		t.Errorf("runPixelAsync while draining: %d, Retry-After %q: %s", sresp.StatusCode, sresp.Header.Get("Retry-After"), sbody)
	}
	// Still listening well into the grace.
	for time.Since(start) < 2*time.Second {
		if got := b.readyz(a); got != http.StatusServiceUnavailable {
			t.Fatalf("/readyz = %d %s after SIGTERM, want 503 for the whole drain", got, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-a.Done():
	case <-time.After(time.Minute):
		t.Fatal("still running a minute after SIGTERM")
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("exited %s after SIGTERM, before the 3 s drain", took)
	}
	if err := a.Stop(); err != nil {
		t.Errorf("exit: %v\n%s", err, a.Logs())
	}
}

// TestPprofApart: --pprof serves /debug/pprof/ on --pprof-addr only; the
// API's port has no such route.
func TestPprofApart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.serve("--pprof", "--pprof-addr", "127.0.0.1:0")
	resp, err := b.hc.Get(a.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("API port /debug/pprof/: %d, want 404", resp.StatusCode)
	}
	re := regexp.MustCompile(`msg="pprof serving" addr=(\S+)`)
	var addr string
	eventually(t, 30*time.Second, "the pprof address in the log", func() bool {
		if m := re.FindStringSubmatch(a.Logs()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("pprof on %s, want loopback", addr)
	}
	resp, err = b.hc.Get(fmt.Sprintf("http://%s/debug/pprof/cmdline", addr))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("pprof port: %d", resp.StatusCode)
	}
}
