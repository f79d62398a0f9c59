package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
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

// TestRevokedKeyStreams: `jobstream keys revoke` ends the key's SSE
// streams and long-polls that were open before it, within the same 5 s
// (the auth cache's lifetime) in which its new requests are refused; the
// long-poll gets a 401. The jobs the key submitted are cancelled, in
// their audit trail by the operator who revoked it (issue 18, item 14);
// another key's job and stream go on, of the same tenant too.
func TestRevokedKeyStreams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.serve("--dev=false")
	alice, bob, carol := b.key("alice", "--tenant", "team"), b.key("bob"), b.key("carol", "--tenant", "team")
	job, err := b.client(a, alice).Submit(context.Background(), jobsapi.CreateJobRequest{Command: "slow", Params: params("sim_tokens", 10_000, "sim_tokens_per_second", 5)})
	if err != nil {
		t.Fatal(err)
	}
	bobJob, err := b.client(a, bob).Submit(context.Background(), jobsapi.CreateJobRequest{Command: "slow", Params: params("sim_tokens", 10_000, "sim_tokens_per_second", 5)})
	if err != nil {
		t.Fatal(err)
	}
	carolJob, err := b.client(a, carol).Submit(context.Background(), jobsapi.CreateJobRequest{Command: "slow", Params: params("sim_tokens", 10_000, "sim_tokens_per_second", 5)})
	if err != nil {
		t.Fatal(err)
	}
	b.waitStatus(job.ID, store.StatusRunning)
	open := func(k apiKey, path string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, a.URL+path, nil)
		req.SetBasicAuth(k.Access, k.Secret)
		return b.hc.Do(req)
	}
	sse, err := open(alice, fmt.Sprintf("/v1/jobs/%s/events", job.ID))
	if err != nil || sse.StatusCode != http.StatusOK {
		t.Fatalf("alice's SSE: %v %v", sse, err)
	}
	defer sse.Body.Close()
	bobSSE, err := open(bob, fmt.Sprintf("/v1/jobs/%s/events", bobJob.ID))
	if err != nil || bobSSE.StatusCode != http.StatusOK {
		t.Fatalf("bob's SSE: %v %v", bobSSE, err)
	}
	defer bobSSE.Body.Close()
	// Read the SSE streams until they end.
	sseEnded := make(chan time.Time, 1)
	go func() { _, _ = io.Copy(io.Discard, sse.Body); sseEnded <- time.Now() }()
	bobEnded := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, bobSSE.Body); close(bobEnded) }()
	// A long-poll far ahead of the stream of a job of alice's tenant that
	// is not hers (her own ends with the revocation): it waits.
	pollEnded := make(chan int, 1)
	go func() {
		resp, err := open(alice, fmt.Sprintf("/v1/jobs/%s/chunks?offset=1000000&wait=25", carolJob.ID))
		if err != nil {
			pollEnded <- 0
			return
		}
		resp.Body.Close()
		pollEnded <- resp.StatusCode
	}()
	eventually(t, 30*time.Second, "the long-poll to wait", func() bool { return b.metric(a, "jobstream_reader_waiters") >= 1 })

	start := time.Now()
	if _, _, err := b.cli(nil, "keys", "revoke", alice.Access); err != nil {
		t.Fatal(err)
	}
	limit := time.After(time.Minute)
	select {
	case at := <-sseEnded:
		if took := at.Sub(start); took > 5*time.Second {
			t.Errorf("alice's SSE stream ended %s after revocation, want within 5 s", took)
		}
	case <-limit:
		t.Fatal("alice's SSE stream still open a minute after revocation")
	}
	select {
	case status := <-pollEnded:
		if status != http.StatusUnauthorized {
			t.Errorf("alice's long-poll ended with %d, want 401", status)
		}
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("alice's long-poll ended %s after revocation, want within 5 s", took)
		}
	case <-limit:
		t.Fatal("alice's long-poll still waiting a minute after revocation")
	}
	if resp := b.do(t, alice, http.MethodGet, a.URL+"/v1/jobs", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice after revocation: %d, want 401", resp.StatusCode)
	}
	select {
	case <-bobEnded:
		t.Error("bob's stream ended with alice's revocation")
	default:
	}
	// Alice's job was cancelled by the revocation, as the audit trail
	// says; carol's and bob's run on.
	b.waitStatus(job.ID, store.StatusCancelled)
	var audit struct {
		Events []struct {
			Event, Actor string
			Reason       *string
		}
	}
	resp := b.do(t, carol, http.MethodGet, a.URL+"/v1/jobs/"+job.ID.String()+"/audit", "")
	if err := json.NewDecoder(resp.Body).Decode(&audit); err != nil {
		t.Fatal(err)
	}
	revoked := false
	for _, e := range audit.Events {
		revoked = revoked || e.Event == "cancel_requested" && strings.HasPrefix(e.Actor, "cli") && e.Reason != nil && *e.Reason == "key_revoked"
	}
	if !revoked {
		t.Errorf("alice's job's audit trail %+v lacks the cancel request of the revocation", audit.Events)
	}
	for _, id := range []uuid.UUID{carolJob.ID, bobJob.ID} {
		var status string
		if err := b.pool.QueryRow(context.Background(), `SELECT status FROM jobs WHERE id = $1`, id).Scan(&status); err != nil || status != store.StatusRunning {
			t.Errorf("job %s is %s (%v) after alice's revocation, want running", id, status, err)
		}
	}
}

// TestHostileCredentials: credentials PostgreSQL cannot compare (a NUL,
// invalid UTF-8 in the access key) are wrong credentials on every route:
// 401 on authenticated ones and POST /auth/login, logged out on GET
// /config, never a 500.
func TestHostileCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.serve("--dev=false")
	for _, access := range []string{"ak_\xff", "ak_\x00", "\x00\xff"} {
		k := apiKey{Access: access, Secret: "x"}
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/v1/jobs", ""},
			{http.MethodPost, "/v1/jobs", `{"command":"hi"}`},
			{http.MethodGet, "/v1/engines", ""},
			{http.MethodPost, "/Monolith/api/engine/runPixel", "expression=META"},
			{http.MethodPost, "/Monolith/api/engine/pixelJobStreaming", "jobId=x"},
		} {
			if resp := b.do(t, k, r.method, a.URL+r.path, r.body); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with access key %q: %d, want 401", r.method, r.path, access, resp.StatusCode)
			}
		}
		resp := b.do(t, k, http.MethodGet, a.URL+"/Monolith/api/config", "")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"loginDetails":{}`) {
			t.Errorf("/config with access key %q: %d %s, want 200 logged out", access, resp.StatusCode, body)
		}
	}
	for _, user := range []string{"ak_%00", "ak_%ff", "%00"} {
		resp := b.do(t, apiKey{}, http.MethodPost, a.URL+"/Monolith/api/auth/login", "username="+user+"&password=x")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/auth/login as %s: %d, want 401", user, resp.StatusCode)
		}
	}
	if strings.Contains(a.Logs(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", a.Logs())
	}
}

// TestLoginRoutesLimited: GET /config, POST /auth/login and /logout are
// rate-limited like every other route (per key, else per client address),
// and a key that logs in on every request keeps a bounded number of
// sessions.
func TestLoginRoutesLimited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.serve("--dev=false", "--rate-limit", "2", "--rate-burst", "5")
	k := b.key("eager")
	for _, r := range []struct {
		k          apiKey
		method     string
		path, body string
	}{
		{k, http.MethodGet, "/Monolith/api/config", ""},
		{apiKey{}, http.MethodPost, "/Monolith/api/auth/login", "username=" + k.Access + "&password=" + k.Secret},
		{apiKey{}, http.MethodGet, "/Monolith/api/logout/all", ""},
	} {
		limited := false
		for range 30 {
			resp := b.do(t, r.k, r.method, a.URL+r.path, r.body)
			if resp.StatusCode == http.StatusTooManyRequests {
				limited = resp.Header.Get("Retry-After") != ""
				break
			}
		}
		if !limited {
			t.Errorf("%s %s: 30 calls at once and no 429 with Retry-After", r.method, r.path)
		}
	}
}
